import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { PermanentError, RetryableError, type EndpointName, type FlowAdapter, type FlowOutcome } from '@crm-sync/core';
import { RecordingFlowOperations, type RecordedOperation, type RecordingFlowOperationsOptions } from './recording-flow-operations';
import { resolveTestApi, type TestApi } from './test-api';

export interface FlowSuiteOptions {
  /** The test framework's describe/it; default the globals. */
  test?: TestApi;
}

const ALL_ENDPOINTS: readonly EndpointName[] = ['fetch', 'create', 'update', 'upsert'];
const ACTIONS = ['created', 'updated', 'upserted', 'skipped'];
const KNOWN = 'L-known';
const FOUND = 'L-found';

interface Scenario extends RecordingFlowOperationsOptions {
  label: string;
}

interface Run {
  scenario: Scenario;
  ops: RecordingFlowOperations;
  outcome?: FlowOutcome;
  error?: unknown;
}

/** Every situation the engine can put a flow in, against a mapping with just the required endpoints and with all of them. */
function scenarios(adapter: FlowAdapter): Scenario[] {
  const situations: Scenario[] = [
    { label: 'no stored id, CRM finds nothing' },
    { label: 'no stored id, CRM finds a lead', found: FOUND },
    { label: 'no stored id, find fails', findError: new RetryableError('ERR_CRM_UNAVAILABLE', 'the CRM answered 503') },
    { label: 'no stored id, every write fails', writeError: new PermanentError('ERR_CRM_REJECTED', 'the CRM answered 400') },
    { label: 'stored id', knownLeadId: KNOWN },
    { label: 'stored id, find would find another lead', knownLeadId: KNOWN, found: FOUND },
    { label: 'stored id, every write fails', knownLeadId: KNOWN, writeError: new PermanentError('ERR_CRM_REJECTED', 'the CRM answered 400') },
  ];
  const endpointSets: Array<[string, readonly EndpointName[]]> = [[`only ${adapter.requires.join('+') || 'no endpoints'}`, adapter.requires], ['every endpoint', ALL_ENDPOINTS]];
  return endpointSets.flatMap(([setLabel, endpoints]) => situations.map((s) => ({ ...s, endpoints, label: `${s.label}; mapping declares ${setLabel}` })));
}

async function runAll(adapter: FlowAdapter): Promise<Run[]> {
  const runs: Run[] = [];
  for (const scenario of scenarios(adapter)) {
    const ops = new RecordingFlowOperations(scenario);
    try {
      runs.push({ scenario, ops, outcome: await adapter.run(ops) });
    } catch (error) {
      runs.push({ scenario, ops, error });
    }
  }
  return runs;
}

function trace(run: Run): string {
  const calls = run.ops.calls.map((c) => `${c.op}(${c.arg ?? ''})${c.op === 'has' ? `=${String(c.result)}` : c.error ? ' threw' : ''}`).join(' → ') || 'no calls';
  return `[${run.scenario.label}] calls: ${calls}`;
}

const isWrite = (c: RecordedOperation) => c.op === 'create' || c.op === 'update' || c.op === 'upsert';
const ENDPOINT_OF = { find: 'fetch', create: 'create', update: 'update', upsert: 'upsert' } as const;
const isSkip = (c: RecordedOperation) => c.op === 'skip';

/**
 * The behaviour every flow adapter owes the engine (CONTRACT.md), checked against a recording FlowOperations.
 * Call it from the adapter's own test file: `runFlowAdapterSuite(adapter)`.
 */
export function runFlowAdapterSuite(adapter: FlowAdapter, options: FlowSuiteOptions = {}): void {
  const { describe, it } = resolveTestApi(options.test);
  let cached: Promise<Run[]> | undefined;
  const runs = () => (cached ??= runAll(adapter));

  describe(`flow adapter ${JSON.stringify(adapter.name)}: shared behaviour suite`, () => {
    it('declares itself: kind flow, a name, and the endpoints it requires', async () => {
      assert.equal(adapter.kind, 'flow');
      assert.match(adapter.name, /^[a-z0-9][a-z0-9._-]*$/, 'name must be lower-case letters, digits, . _ -');
      for (const e of adapter.requires) assert.ok(ALL_ENDPOINTS.includes(e), `requires names an unknown endpoint ${JSON.stringify(e)}`);
    });

    it('calls only endpoints it requires or has() confirmed', async () => {
      for (const run of await runs()) {
        const confirmed = new Set<string>(adapter.requires);
        for (const c of run.ops.calls) {
          if (c.op === 'has') { if (c.result) confirmed.add(c.arg!); continue; }
          if (c.op === 'skip') continue;
          assert.ok(confirmed.has(ENDPOINT_OF[c.op]), `${c.op}() uses ${ENDPOINT_OF[c.op]}, which is neither required nor checked with has(). ${trace(run)}`);
        }
      }
    });

    it('propagates a failing find() and never creates after it', async () => {
      for (const run of (await runs()).filter((r) => r.scenario.findError && r.ops.performed.some((c) => c.op === 'find'))) {
        assert.equal(run.error, run.scenario.findError, `the find() error must reach the engine unchanged. ${trace(run)}`);
        const after = run.ops.performed.slice(run.ops.performed.findIndex((c) => c.op === 'find') + 1);
        assert.ok(!after.some((c) => c.op === 'create' || c.op === 'upsert'), `a failing fetch must never fall through to a create. ${trace(run)}`);
      }
    });

    it('never creates a lead that find() found', async () => {
      for (const run of await runs()) {
        const foundAt = run.ops.performed.findIndex((c) => c.op === 'find' && c.result !== undefined);
        if (foundAt < 0) continue;
        assert.ok(!run.ops.performed.slice(foundAt + 1).some((c) => c.op === 'create'), `find() found ${String(run.ops.performed[foundAt].result)}; creating would duplicate it. ${trace(run)}`);
      }
    });

    it('with a stored lead id, tries it (update or upsert) before any create, and does not skip it', async () => {
      for (const run of (await runs()).filter((r) => r.scenario.knownLeadId)) {
        const firstWrite = run.ops.performed.find(isWrite);
        assert.ok(firstWrite, `the flow wrote nothing${run.ops.performed.some(isSkip) ? ' (it skipped a contact that has a lead)' : ''}. ${trace(run)}`);
        assert.ok(firstWrite.op === 'upsert' || (firstWrite.op === 'update' && firstWrite.arg === KNOWN),
          `the first write must be update(${KNOWN}) or upsert(), was ${firstWrite.op}(${firstWrite.arg ?? ''}). ${trace(run)}`);
      }
    });

    it('propagates failures of create, update and upsert', async () => {
      // Those that wrote: a flow may end without a write (a skip).
      for (const run of (await runs()).filter((r) => r.scenario.writeError && r.ops.performed.some(isWrite))) {
        assert.equal(run.error, run.scenario.writeError, `a failed write must reach the engine unchanged. ${trace(run)}`);
      }
    });

    it('returns the outcome of the write it performed, with an action', async () => {
      for (const run of (await runs()).filter((r) => !r.scenario.findError && !r.scenario.writeError)) {
        assert.equal(run.error, undefined, `the flow failed: ${String((run.error as Error)?.message ?? run.error)}. ${trace(run)}`);
        assert.ok(run.outcome && ACTIONS.includes(run.outcome.action), `the outcome must have an action (${ACTIONS.join(', ')}), got ${JSON.stringify(run.outcome)}. ${trace(run)}`);
        const written = run.ops.performed.filter((c) => (isWrite(c) || isSkip(c)) && !c.error).map((c) => c.result);
        assert.ok(written.some((o) => isDeepStrictEqual(o, run.outcome)), `the outcome must be one an operation returned (the engine's record of what it did). ${trace(run)}`);
        if (run.outcome?.action === 'skipped') {
          assert.ok(!run.ops.performed.some(isWrite), `a flow that wrote returns the write's outcome, not a skip. ${trace(run)}`);
          assert.ok(typeof run.outcome.reason === 'string' && run.outcome.reason.trim() !== '', `a skip says why. ${trace(run)}`);
        }
      }
    });
  });
}
