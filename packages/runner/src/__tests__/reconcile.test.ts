import type { Contact, LeadReading } from '@crm-sync/core';
import type { TenantSettings } from '../api';
import { systemClock } from '../clock';
import type { SyncEngineLike } from '../dispatch/attempt';
import { reconcileTenant } from '../reconcile';
import type { Store, SyncedLead, SyncedLeadsPage } from '../store/types';

const lead = (id: string): SyncedLead => ({
  contactId: id, contact: { tenant: 'acme', contactId: id, phone: '+919876543210', tags: [], attributes: {} } as Contact,
  leadId: `L-${id}`, payloadHash: 'h', payload: { name: id },
});

/** A store serving the given pages in order, and every listed lead as still synced. */
function storeOf(pages: SyncedLeadsPage[]): Store {
  const byId = new Map(pages.flatMap((p) => p.leads).map((l) => [l.contactId, l]));
  return {
    syncedLeads: async (_t: string, { cursor }: { cursor?: string }) => pages[cursor === undefined ? 0 : Number(cursor)]!,
    syncedLead: async (_t: string, id: string) => byId.get(id),
  } as unknown as Store;
}

function engineReading(): { engine: SyncEngineLike; reads: string[] } {
  const reads: string[] = [];
  const engine = {
    readLead: async (_m: unknown, contact: Contact): Promise<LeadReading> => {
      reads.push(contact.contactId);
      return { found: true, leadId: `L-${contact.contactId}`, fields: { name: contact.contactId }, calls: [] };
    },
  } as unknown as SyncEngineLike;
  return { engine, reads };
}

const tenant = { name: 'acme', mapping: { name: 'm', endpoints: { fetch: {} } } } as unknown as TenantSettings;

describe('reconcileTenant', () => {
  it('checks a contact a Redis SCAN lists twice once (its pages say mayRepeat)', async () => {
    const { engine, reads } = engineReading();
    const store = storeOf([
      { leads: [lead('a'), lead('b')], cursor: '1', mayRepeat: true },
      { leads: [lead('b'), lead('c')], mayRepeat: true },
    ]);
    const report = await reconcileTenant({ store, engine, clock: systemClock, tenant, resync: async () => 0 }, { perSecond: 1e6 });
    expect(reads.sort()).toEqual(['a', 'b', 'c']);
    expect(report).toMatchObject({ checked: 3, counts: { match: 3 }, complete: true });
  });

  it('keeps no list of ids for a store that lists each contact once', async () => {
    const { engine, reads } = engineReading();
    // Not something SQLite does: shown here only to prove no ids are remembered without mayRepeat.
    const store = storeOf([{ leads: [lead('a'), lead('a')] }]);
    await reconcileTenant({ store, engine, clock: systemClock, tenant, resync: async () => 0 }, { perSecond: 1e6 });
    expect(reads).toEqual(['a', 'a']);
  });

  it('every read goes through the tenant\'s pacer, which its syncs share', async () => {
    const paced: string[] = [];
    const pacer = { beforeRequest: () => { paced.push('before'); }, afterResponse: () => { paced.push('after'); } };
    const seen: unknown[] = [];
    const engine = {
      readLead: async (_m: unknown, contact: Contact, opts: { pacer?: unknown }): Promise<LeadReading> => {
        seen.push(opts.pacer);
        return { found: true, leadId: `L-${contact.contactId}`, fields: { name: contact.contactId }, calls: [] };
      },
    } as unknown as SyncEngineLike;
    await reconcileTenant({ store: storeOf([{ leads: [lead('a'), lead('b')] }]), engine, clock: systemClock, tenant, pacer, resync: async () => 0 }, { perSecond: 1e6 });
    expect(seen).toEqual([pacer, pacer]);
  });

  it('a stop while it waits for the next read\'s turn ends the wait at once', async () => {
    const { engine, reads } = engineReading();
    const stop = new AbortController();
    const store = storeOf([{ leads: [lead('a'), lead('b')] }]);
    // One read every 100 s: the second would wait that long.
    const pass = reconcileTenant({ store, engine, clock: systemClock, tenant, resync: async () => 0 }, { perSecond: 0.01, signal: stop.signal });
    while (reads.length === 0) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20)); // now waiting for the second read's turn
    const stoppedAt = Date.now();
    stop.abort();
    await expect(pass).resolves.toMatchObject({ checked: 1, complete: false });
    expect(Date.now() - stoppedAt).toBeLessThan(1000);
    expect(reads).toEqual(['a']);
  });

  it('checks a contact named twice once', async () => {
    const { engine, reads } = engineReading();
    const store = storeOf([{ leads: [lead('a')] }]);
    const report = await reconcileTenant({ store, engine, clock: systemClock, tenant, resync: async () => 0 }, { perSecond: 1e6, contactIds: ['a', 'a'] });
    expect(reads).toEqual(['a']);
    expect(report.checked).toBe(1);
  });
});
