import { PermanentError } from '@crm-sync/core';
import { RECORDED_IDS, RecordingFlowOperations, runFlowAdapterSuite } from '@crm-sync/testkit';
import { adapter } from '..';

describe('no-fetch flow', () => {
  it('requires create and update only', () => {
    expect([...adapter.requires].sort()).toEqual(['create', 'update']);
  });

  it('with a stored lead id, updates it', async () => {
    const ops = new RecordingFlowOperations({ knownLeadId: 'L-9', endpoints: ['create', 'update'] });
    await expect(adapter.run(ops)).resolves.toEqual({ action: 'updated', leadId: 'L-9' });
    expect(ops.performed.map((c) => [c.op, c.arg])).toEqual([['update', 'L-9']]);
  });

  it('without one, creates and never fetches, even when the mapping declares a fetch endpoint', async () => {
    const ops = new RecordingFlowOperations();
    await expect(adapter.run(ops)).resolves.toEqual({ action: 'created', leadId: RECORDED_IDS.created });
    expect(ops.performed.map((c) => c.op)).toEqual(['create']);
  });

  it('a failed update is not followed by a create (the engine decides about stale ids)', async () => {
    const rejected = new PermanentError('ERR_CRM_REJECTED', 'the CRM answered 400');
    const ops = new RecordingFlowOperations({ knownLeadId: 'L-9', writeError: rejected });
    await expect(adapter.run(ops)).rejects.toBe(rejected);
    expect(ops.performed.map((c) => c.op)).toEqual(['update']);
  });
});

runFlowAdapterSuite(adapter);
