import { RetryableError } from '@crm-sync/core';
import { RECORDED_IDS, RecordingFlowOperations, runFlowAdapterSuite } from '@crm-sync/testkit';
import { adapter } from '..';

describe('upsert flow', () => {
  it('requires the upsert endpoint only', () => {
    expect(adapter.requires).toEqual(['upsert']);
  });

  it('makes one upsert call without a stored lead id', async () => {
    const ops = new RecordingFlowOperations({ endpoints: ['upsert'] });
    await expect(adapter.run(ops)).resolves.toEqual({ action: 'upserted', leadId: RECORDED_IDS.upserted });
    expect(ops.performed.map((c) => c.op)).toEqual(['upsert']);
  });

  it('makes one upsert call with a stored lead id (the endpoint body carries it), never fetch, create or update', async () => {
    const ops = new RecordingFlowOperations({ knownLeadId: 'L-9' });
    await expect(adapter.run(ops)).resolves.toEqual({ action: 'upserted', leadId: 'L-9' });
    expect(ops.performed.map((c) => c.op)).toEqual(['upsert']);
  });

  it('a failed upsert is the sync\'s error', async () => {
    const outage = new RetryableError('ERR_CRM_UNAVAILABLE', 'the CRM answered 503');
    await expect(adapter.run(new RecordingFlowOperations({ writeError: outage }))).rejects.toBe(outage);
  });
});

runFlowAdapterSuite(adapter);
