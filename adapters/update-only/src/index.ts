import type { FlowAdapter } from '@crm-sync/core';

/**
 * For a CRM that is the source of its leads: crm-sync only keeps the ones it has up to date, and never creates one.
 * Known id → update; else find → update the lead found; a contact the CRM does not know is skipped (settled with no
 * lead, its history says why), not dead-lettered: its next change looks again, so a lead created in the CRM
 * meanwhile is found then.
 */
export const adapter: FlowAdapter = {
  kind: 'flow',
  name: 'update-only',
  requires: ['fetch', 'update'],
  async run(ops) {
    if (ops.knownLeadId) return ops.update(ops.knownLeadId);
    const found = await ops.find();
    return found ? ops.update(found) : ops.skip('the CRM has no lead for this contact, and the update-only flow never creates one');
  },
};

export default adapter;
