import { setTimeout } from 'node:timers/promises';
import {
  dryRun, PermanentError, leadDifferences, resolveSecretRef, SyncEngine, SyncError,
  type CallRecord, type CompiledExpression, type CompiledMapping, type Contact, type EndpointName, type FlowAdapter, type HttpClient, type MatchKey, type ReaderName,
} from '@crm-sync/core';
import { RecordingHttpClient, type Exchange } from './recording-client';
import { makeTestContacts, type TestContacts } from './test-contact';

export type StepOutcome = 'pass' | 'fail' | 'skip';

export interface StepReport {
  number: number;
  /** e.g. `create`, `fetch by phone`. */
  name: string;
  outcome: StepOutcome;
  /** What the step found (`created lead L000001`), or why it was skipped. */
  result: string;
  /** For a failed step: what was expected, which reader decided, what the CRM answered. */
  failure?: string;
  exchanges: Exchange[];
}

export interface VerifyReport {
  mapping: string;
  baseUrl: string;
  contact: Contact;
  /** The lead the test contact became, when step 1 made one: it stays in the CRM. */
  leadId?: string;
  steps: StepReport[];
  ok: boolean;
}

export interface VerifyOptions {
  /** The client requests go through (a GotHttpClient with the operator's network policy). */
  http: HttpClient;
  /** Overrides the mapping's baseUrl. */
  baseUrl?: string;
  /** Default: a fresh marked contact (makeTestContacts) of `tenant`. */
  contacts?: TestContacts;
  /** The test contact's tenant (default `crm-sync-verify`): what `{{tenant}}` and `tenant` give the mapping. */
  tenant?: string;
}

/** How often a fetch is repeated while a mapping's `searchLagMs` says a new lead may not be searchable yet. */
const LAG_POLL_MS = 250;

/** The error codes the engine throws when one of the mapping's readers decided; the reader is named in the failure. */
const READER_BY_CODE: Record<string, ReaderName> = {
  ERR_NO_LEAD_ID: 'leadId',
  ERR_CRM_REJECTED: 'failed',
  ERR_CRM_AUTH: 'failed',
  ERR_CRM_UNAVAILABLE: 'failed',
  ERR_RATE_LIMITED: 'failed',
  ERR_STALE_LEAD: 'stale',
};

/**
 * A flow that runs the mapping's match chain offline and stops there, writing nothing: fetchSends compares the
 * requests it made. (It has no outcome to return, so the engine reports the stop as the sync's error.)
 */
const FETCH_ONLY: FlowAdapter = {
  kind: 'flow',
  name: 'verify-fetch-only',
  requires: ['fetch'],
  run: async (ops) => {
    await ops.find();
    throw new PermanentError('ERR_FETCH_ONLY', 'stopped after the fetch');
  },
};

/** A check of the verifier's own (not an engine error) that failed; `reader` is the mapping's reader it implicates. */
class CheckFailed extends Error {
  constructor(message: string, readonly reader?: CompiledExpression) {
    super(message);
  }
}

/** A step that found nothing to check (its reason is the step's result). */
class NothingToCheck extends Error {}

interface FetchProbe {
  key: 'phone' | 'email';
  contact: Contact;
  /** The match chain narrowed to this key, for mappings that declare one. */
  match?: MatchKey[];
  /** Why this key cannot be probed with this mapping. */
  skip?: string;
  /** Said in the result, so the reader of the table knows how the key was isolated. */
  note?: string;
}

/** The mapping with its flow replaced by FETCH_ONLY. */
function fetchOnly(mapping: CompiledMapping): CompiledMapping {
  return { ...mapping, flow: FETCH_ONLY };
}

/** The mapping with its match chain narrowed, when `match` is given. */
function matchingBy(mapping: CompiledMapping, match?: MatchKey[]): CompiledMapping {
  return match ? { ...mapping, definition: { ...mapping.definition, match } } : mapping;
}

/** Whether the fetch request changes with the contact's `key`: rendered offline by the engine, so nothing is guessed. */
async function fetchSends(mapping: CompiledMapping, contact: Contact, key: 'phone' | 'email', other: string): Promise<boolean> {
  const [a, b] = await Promise.all([dryRun(fetchOnly(mapping), contact), dryRun(fetchOnly(mapping), { ...contact, [key]: other })]);
  return JSON.stringify(a.requests[0]) !== JSON.stringify(b.requests[0]);
}

/**
 * How to fetch by phone alone and by email alone. With a match chain, the chain is narrowed to the key. Without one,
 * the fetch endpoint gets every key at once: by phone sends a contact without email, by email sends a contact whose
 * phone changed, so only the email can match. A key the fetch request does not carry is skipped.
 */
async function fetchProbes(mapping: CompiledMapping, contacts: TestContacts): Promise<FetchProbe[]> {
  const chain = mapping.definition.match;
  const { created, otherPhone } = contacts;
  const otherEmail = created.email!.replace('@', '.other@');
  const probes: FetchProbe[] = [];
  for (const key of ['phone', 'email'] as const) {
    if (chain) {
      probes.push(chain.includes(key) ? { key, contact: created, match: [key] }
        : { key, contact: created, skip: `the match chain (${chain.join(', ')}) has no ${key}` });
    } else if (!(await fetchSends(mapping, created, key, key === 'phone' ? otherPhone : otherEmail))) {
      probes.push({ key, contact: created, skip: `the fetch request does not carry the ${key}` });
    } else {
      probes.push(key === 'phone'
        ? { key, contact: { ...created, email: undefined }, note: 'sent without the email' }
        : { key, contact: { ...created, phone: otherPhone }, note: `sent with another phone, ${otherPhone}` });
    }
  }
  return probes;
}

function readerLabel(reader: CompiledExpression | undefined): string | undefined {
  return reader && `${reader.field} = ${reader.source}`;
}

function describeExchange(x: Exchange | undefined): string[] {
  if (!x) return ['  sent:   nothing (no request was made)'];
  return [
    `  sent:   ${x.method} ${x.url}${x.requestBody ? ` ${x.requestBody}` : ''}`,
    `  got:    ${x.error ? `no answer: ${x.error}` : `${x.status} ${x.responseBody || '(empty body)'}`}`,
  ];
}

/**
 * Runs one integration end to end against a live CRM with a marked test contact, through the engine the runner uses:
 * 1 create (or upsert), 2 fetch by phone, 3 fetch by email, 4 update (a new name), 5 fetch again. Each step checks that
 * the mapping's readers found what they should; a failed step says which reader and what the CRM answered.
 */
export async function verifyMapping(mapping: CompiledMapping, options: VerifyOptions): Promise<VerifyReport> {
  // Resolved before anything is sent: a missing secret is a clear error naming its reference, not a failed step.
  const secret = mapping.auth ? resolveSecretRef(String(mapping.definition.auth.secret)) : undefined;
  const recorder = new RecordingHttpClient(options.http, secret ? [secret] : []);
  const authRef = String(mapping.definition.auth?.secret);
  const engine = new SyncEngine({
    http: recorder,
    // The mapping's secret as resolved above; any other reference (an auth adapter's client secret) when asked for.
    secrets: (ref) => (ref === authRef ? secret! : resolveSecretRef(ref)),
    onSecret: (value) => recorder.addSecret(value),
  });
  const verifier = new Verifier(mapping, options, recorder, engine);
  return verifier.run();
}

/** The endpoint of a sync's last CRM call (a token request of the auth adapter is not one). */
function lastEndpoint(calls: readonly CallRecord[]): EndpointName | undefined {
  for (let i = calls.length - 1; i >= 0; i--) {
    const step = calls[i]!.step;
    if (step !== 'auth') return step;
  }
  return undefined;
}

class Verifier {
  private readonly steps: StepReport[] = [];
  private readonly contacts: TestContacts;
  private readonly baseUrl: string;
  private leadId?: string;
  private createdPayload?: unknown;
  private updatedPayload?: unknown;

  constructor(
    private readonly mapping: CompiledMapping,
    options: VerifyOptions,
    private readonly recorder: RecordingHttpClient,
    private readonly engine: SyncEngine,
  ) {
    this.contacts = options.contacts ?? makeTestContacts(new Date(), options.tenant);
    this.baseUrl = options.baseUrl ?? mapping.definition.baseUrl;
  }

  async run(): Promise<VerifyReport> {
    const hasFetch = this.mapping.endpoints.fetch !== undefined;
    const noFetch = `the mapping declares no fetch endpoint (flow ${this.mapping.flow.name})`;
    const writesWith = this.mapping.flow.requires.includes('upsert') ? 'upsert' : 'create';
    await this.step(writesWith, () => this.create());
    if (hasFetch) {
      for (const probe of await fetchProbes(this.mapping, this.contacts)) {
        const name = `fetch by ${probe.key}`;
        if (probe.skip) this.skip(name, probe.skip);
        else await this.step(name, () => this.fetch(probe.contact, probe.match, probe.note));
      }
    } else {
      this.skip('fetch by phone', noFetch);
      this.skip('fetch by email', noFetch);
    }
    await this.step('update', () => this.update());
    if (hasFetch) {
      await this.step('fetch again', () => this.fetch(this.contacts.renamed, undefined, 'after the update', this.leadId));
      await this.step('read back', () => this.readBack());
    } else {
      this.skip('fetch again', noFetch);
      this.skip('read back', noFetch);
    }
    return {
      mapping: this.mapping.name, baseUrl: this.baseUrl, contact: this.contacts.created, leadId: this.leadId,
      steps: this.steps, ok: this.steps.every((s) => s.outcome !== 'fail'),
    };
  }

  private skip(name: string, reason: string): void {
    this.steps.push({ number: this.steps.length + 1, name, outcome: 'skip', result: reason, exchanges: [] });
  }

  private async step(name: string, body: () => Promise<string>): Promise<void> {
    const number = this.steps.length + 1;
    if (number > 1 && this.leadId === undefined) {
      this.skip(name, 'needs the lead from step 1');
      return;
    }
    let result: string;
    let error: SyncError | CheckFailed | undefined;
    try {
      result = await body();
    } catch (err) {
      if (err instanceof NothingToCheck) {
        this.recorder.take();
        this.skip(name, err.message);
        return;
      }
      if (!(err instanceof SyncError || err instanceof CheckFailed)) throw err;
      error = err;
      result = err instanceof SyncError ? err.code : 'check failed';
    }
    const exchanges = this.recorder.take();
    this.steps.push({
      number, name, outcome: error ? 'fail' : 'pass', result, exchanges,
      failure: error && this.describeFailure(number, name, error, exchanges),
    });
  }

  private describeFailure(number: number, name: string, error: SyncError | CheckFailed, exchanges: Exchange[]): string {
    let where = `step ${number} (${name})`;
    let reader: CompiledExpression | undefined;
    let what: string;
    if (error instanceof SyncError) {
      const readerName = READER_BY_CODE[error.code];
      const endpoint = error.context.step as EndpointName | undefined;
      // Step 1 of a fetch-create-update flow fetches before it creates: say which call failed.
      if (endpoint && !name.startsWith(endpoint)) where += ` at its ${endpoint} call`;
      reader = readerName && endpoint ? this.mapping.endpoints[endpoint]?.readers[readerName] : undefined;
      what = `${error.code}: ${error.message}${error.context.reason ? ` (the CRM's reason: ${error.context.reason})` : ''}`;
    } else {
      reader = error.reader;
      what = error.message;
    }
    const lines = [`${where}: ${what}`];
    const label = readerLabel(reader);
    if (label) lines.push(`  reader: ${label}`);
    lines.push(...describeExchange(exchanges.at(-1)));
    return lines.join('\n');
  }

  private readers(endpoint: EndpointName) {
    return this.mapping.endpoints[endpoint]?.readers ?? {};
  }

  private async create(): Promise<string> {
    const result = await this.engine.sync(this.mapping, this.contacts.created, { baseUrl: this.baseUrl });
    if (result.action === 'skipped') {
      throw new CheckFailed(`the ${this.mapping.flow.name} flow wrote nothing for the new test contact (skipped: ${result.reason ?? 'no reason given'}): `
        + 'verify makes a marked test lead with the mapping\'s own flow, so a flow that never creates cannot make one. Verify a copy of the mapping with flow: fetch-create-update; its endpoints and readers are the same');
    }
    if (result.action === 'updated') {
      throw new CheckFailed(`the flow found lead ${JSON.stringify(result.leadId)} for a brand-new test contact and updated it instead of creating one`
        + ' (does the fetch endpoint ignore its keys, or is the notFound reader wrong?)', this.readers('fetch').notFound);
    }
    const endpoint = lastEndpoint(result.calls) ?? 'create';
    if (result.leadId === undefined) throw new CheckFailed(`${endpoint} answered success, but the leadId reader found no id`, this.readers(endpoint).leadId);
    this.leadId = result.leadId;
    this.createdPayload = result.payload;
    return `${result.action} lead ${result.leadId}`;
  }

  /** Runs the match chain; while the CRM's search may still lag behind the create, a not-found is tried again. */
  private async find(contact: Contact, match: MatchKey[] | undefined, knownLeadId?: string): Promise<string | undefined> {
    const mapping = matchingBy(this.mapping, match);
    const deadline = Date.now() + (this.mapping.definition.searchLagMs ?? 0);
    for (;;) {
      const reading = await this.engine.readLead(mapping, contact, { baseUrl: this.baseUrl, knownLeadId });
      const leadId = reading.found ? reading.leadId : undefined;
      const left = deadline - Date.now();
      if (leadId !== undefined || left <= 0) return leadId;
      await setTimeout(Math.min(LAG_POLL_MS, left));
    }
  }

  private async fetch(contact: Contact, match: MatchKey[] | undefined, note?: string, knownLeadId?: string): Promise<string> {
    const found = await this.find(contact, match, knownLeadId);
    const how = note ? ` (${note})` : '';
    const lag = this.mapping.definition.searchLagMs ? ` within searchLagMs ${this.mapping.definition.searchLagMs}` : '';
    if (found === undefined) {
      throw new CheckFailed(`the CRM did not find lead ${JSON.stringify(this.leadId)} from step 1${how}${lag}: the notFound reader said not found`, this.readers('fetch').notFound);
    }
    if (found !== this.leadId) {
      throw new CheckFailed(`fetch found lead ${JSON.stringify(found)}, but step 1 made ${JSON.stringify(this.leadId)}${how}: a duplicate lead, or the leadId reader reads the wrong field`,
        this.readers('fetch').leadId);
    }
    return `found lead ${found}${how}`;
  }

  private async update(): Promise<string> {
    const leadId = this.leadId!;
    const result = await this.engine.sync(this.mapping, this.contacts.renamed, { baseUrl: this.baseUrl, knownLeadId: leadId, previousPayload: this.createdPayload });
    const endpoint = lastEndpoint(result.calls) ?? 'update';
    if (result.forgotLeadId !== undefined) {
      throw new CheckFailed(`the update answered that lead ${JSON.stringify(leadId)} from step 1 no longer exists; the flow matched again and ${result.action} lead ${JSON.stringify(result.leadId)}`,
        this.readers('update').stale);
    }
    if (result.leadId !== leadId) {
      throw new CheckFailed(`${endpoint} answered with lead ${JSON.stringify(result.leadId)}, not ${JSON.stringify(leadId)} from step 1`, this.readers(endpoint).leadId);
    }
    this.updatedPayload = result.payload;
    return `${result.action} lead ${leadId} (renamed)`;
  }

  /** What crm-sync reconcile reads: the lead through the fetch with the stored id, its fields by leadFields, against the update's payload. */
  private async readBack(): Promise<string> {
    const leadId = this.leadId!;
    if (this.updatedPayload === undefined) throw new NothingToCheck('needs the payload of step 4');
    const reading = await this.engine.readLead(this.mapping, this.contacts.renamed, { knownLeadId: leadId, baseUrl: this.baseUrl });
    if (!reading.found) throw new CheckFailed(`the fetch with the stored id did not find lead ${JSON.stringify(leadId)}`, this.readers('fetch').notFound);
    if (reading.leadId !== leadId) throw new CheckFailed(`the fetch with the stored id found lead ${JSON.stringify(reading.leadId)}, not ${JSON.stringify(leadId)}`, this.readers('fetch').leadId);
    if (reading.fields === undefined) {
      throw new NothingToCheck('the fetch\'s leadFields reader gives nothing: reconcile can check that the lead exists, not its fields');
    }
    const differences = leadDifferences(this.updatedPayload, reading.fields);
    if (differences.length > 0) {
      const listed = differences.map((d) => `${d.path}: sent ${JSON.stringify(d.sent)}, read back ${d.crm === undefined ? 'nothing' : JSON.stringify(d.crm)}`).join('; ');
      throw new CheckFailed(`leadFields does not give the lead as it was last synced (reconcile would report it as differing): ${listed}`, this.readers('fetch').leadFields);
    }
    return `read lead ${leadId} back: every field as sent`;
  }
}
