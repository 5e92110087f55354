import { RetryableError } from '@crm-sync/core';
import { RECORDED_IDS, RecordingFlowOperations, runFlowAdapterSuite } from '@crm-sync/testkit';
import { adapter } from '..';

describe('fetch-create-update flow', () => {
  it('requires fetch, create and update', () => {
    expect([...adapter.requires].sort()).toEqual(['create', 'fetch', 'update']);
  });

  it('with a stored lead id, updates it without fetching', async () => {
    const ops = new RecordingFlowOperations({ knownLeadId: 'L-9' });
    await expect(adapter.run(ops)).resolves.toEqual({ action: 'updated', leadId: 'L-9' });
    expect(ops.performed.map((c) => [c.op, c.arg])).toEqual([['update', 'L-9']]);
  });

  it('fetch finds the lead → updates it by the fetched id', async () => {
    const ops = new RecordingFlowOperations({ found: 'L-found' });
    await expect(adapter.run(ops)).resolves.toEqual({ action: 'updated', leadId: 'L-found' });
    expect(ops.performed.map((c) => [c.op, c.arg])).toEqual([['find', undefined], ['update', 'L-found']]);
  });

  it('fetch finds nothing → creates', async () => {
    const ops = new RecordingFlowOperations();
    await expect(adapter.run(ops)).resolves.toEqual({ action: 'created', leadId: RECORDED_IDS.created });
    expect(ops.performed.map((c) => c.op)).toEqual(['find', 'create']);
  });

  it('a failing fetch is the sync\'s error: nothing is created', async () => {
    const outage = new RetryableError('ERR_CRM_UNAVAILABLE', 'the CRM answered 503');
    const ops = new RecordingFlowOperations({ findError: outage });
    await expect(adapter.run(ops)).rejects.toBe(outage);
    expect(ops.performed.map((c) => c.op)).toEqual(['find']);
  });
});

runFlowAdapterSuite(adapter);
