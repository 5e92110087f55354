import type { FlowAdapter } from '@crm-sync/core';

/** One endpoint decides create-or-update from the payload (the known lead id, or a unique phone/email). */
export const adapter: FlowAdapter = {
  kind: 'flow',
  name: 'upsert',
  requires: ['upsert'],
  async run(ops) {
    return ops.upsert();
  },
};

export default adapter;
