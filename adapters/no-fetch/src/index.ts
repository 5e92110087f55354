import type { FlowAdapter } from '@crm-sync/core';

/**
 * For CRMs without a fetch endpoint: known id → update, else create. The CRM must de-duplicate creates by phone/email
 * itself (CONTRACT.md): if a create's answer is lost, the retry creates again and only the CRM can recognise it.
 */
export const adapter: FlowAdapter = {
  kind: 'flow',
  name: 'no-fetch',
  requires: ['create', 'update'],
  async run(ops) {
    return ops.knownLeadId ? ops.update(ops.knownLeadId) : ops.create();
  },
};

export default adapter;
