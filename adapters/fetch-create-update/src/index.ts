import type { FlowAdapter } from '@crm-sync/core';

/** The contract's flow: known id → update; else fetch → found: update, not found: create. A failing fetch throws. */
export const adapter: FlowAdapter = {
  kind: 'flow',
  name: 'fetch-create-update',
  requires: ['fetch', 'create', 'update'],
  async run(ops) {
    if (ops.knownLeadId) return ops.update(ops.knownLeadId);
    const found = await ops.find();
    return found ? ops.update(found) : ops.create();
  },
};

export default adapter;
