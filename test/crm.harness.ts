/**
 * Shared setup of the real-CRM integration tests (test/crm.<vendor>.test.ts): a shipped mapping from mappings/, the
 * engine over real HTTP to a testkit emulator, the emulator's token as the mapping's secret.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  compileMapping, GotHttpClient, SyncEngine, SyncError, toContact,
  type CompiledMapping, type LeadReading, type SyncOptions, type SyncResult,
} from '@crm-sync/core';
import { registerBuiltinAdapters } from '@crm-sync/runner';
import type { Emulator } from '@crm-sync/testkit';

export interface CrmHarness {
  mapping: CompiledMapping;
  /** Syncs a contact event (tenant 'acme') against the emulator. */
  sync(event: Record<string, unknown>, opts?: SyncOptions): Promise<SyncResult>;
  /** Syncs and returns the SyncError it must throw. */
  syncFails(event: Record<string, unknown>, opts?: SyncOptions): Promise<SyncError>;
  /** Reads the contact's lead back (what crm-sync reconcile does). */
  readLead(event: Record<string, unknown>, knownLeadId: string): Promise<LeadReading>;
  close(): void;
}

export function shippedMapping(name: string): CompiledMapping {
  registerBuiltinAdapters();
  const file = join(__dirname, '..', 'mappings', `${name}.yaml`);
  return compileMapping(readFileSync(file, 'utf8'), { file });
}

export function crmHarness(mappingName: string, emulator: Emulator<unknown>, opts: { now?: () => number } = {}): CrmHarness {
  const mapping = shippedMapping(mappingName);
  const http = new GotHttpClient({ allowHosts: ['127.0.0.1'] });
  const secretRef = mapping.definition.auth.secret;
  const engine = new SyncEngine({
    http,
    now: opts.now,
    secrets: (ref) => {
      if (ref !== secretRef) throw new Error(`unexpected secret reference ${ref}`);
      return emulator.token;
    },
  });
  const sync = (event: Record<string, unknown>, o: SyncOptions = {}) =>
    engine.sync(mapping, toContact(event, { defaultTenant: 'acme' }), { baseUrl: emulator.url, ...o });
  return {
    mapping,
    sync,
    async syncFails(event, o) {
      const err = await sync(event, o).then(
        (r) => new Error(`expected the sync to fail, it ${r.action} ${r.leadId}`),
        (e: unknown) => e,
      );
      if (!(err instanceof SyncError)) throw err;
      return err;
    },
    readLead: (event, knownLeadId) => engine.readLead(mapping, toContact(event, { defaultTenant: 'acme' }), { knownLeadId, baseUrl: emulator.url }),
    close: () => http.close(),
  };
}

const started: Array<{ crm: CrmHarness; emulator: Emulator<unknown> }> = [];
// In every test file that imports this module: what startCrm started is closed after each test.
afterEach(async () => {
  for (const { crm, emulator } of started.splice(0)) {
    crm.close();
    await emulator.close();
  }
});

/** An emulator (as `starting` resolves it) and a harness of the shipped mapping on it, both closed after the current test. */
export async function startCrm<E extends Emulator<unknown>>(mappingName: string, starting: Promise<E>, opts: { now?: () => number } = {}): Promise<{ emulator: E; crm: CrmHarness }> {
  const emulator = await starting;
  const crm = crmHarness(mappingName, emulator, opts);
  started.push({ crm, emulator });
  return { emulator, crm };
}

/** How many requests of a route the emulator received. */
export function countRequests(emulator: Emulator<unknown>, route: string): number {
  return emulator.requests().filter((r) => r.route === route).length;
}
