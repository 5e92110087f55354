import { RetryableError } from '@crm-sync/core';
import { RecordingFlowOperations, runFlowAdapterSuite } from '@crm-sync/testkit';
import { adapter } from '..';

describe('update-only flow', () => {
  it('requires fetch and update only', () => {
    expect([...adapter.requires].sort()).toEqual(['fetch', 'update']);
  });

  it('with a stored lead id, updates it without a fetch', async () => {
    const ops = new RecordingFlowOperations({ knownLeadId: 'L-9', endpoints: ['fetch', 'update'] });
    await expect(adapter.run(ops)).resolves.toEqual({ action: 'updated', leadId: 'L-9' });
    expect(ops.performed.map((c) => [c.op, c.arg])).toEqual([['update', 'L-9']]);
  });

  it('a lead the fetch finds is updated', async () => {
    const ops = new RecordingFlowOperations({ found: 'L-found', endpoints: ['fetch', 'update'] });
    await expect(adapter.run(ops)).resolves.toEqual({ action: 'updated', leadId: 'L-found' });
  });

  it('a contact the CRM does not know is skipped, never created, even when the mapping declares create', async () => {
    const ops = new RecordingFlowOperations();
    await expect(adapter.run(ops)).resolves.toEqual({ action: 'skipped', reason: 'the CRM has no lead for this contact, and the update-only flow never creates one' });
    expect(ops.performed.map((c) => c.op)).toEqual(['find', 'skip']);
  });

  it('a failing fetch is the sync\'s error, not a skip', async () => {
    const down = new RetryableError('ERR_CRM_UNAVAILABLE', 'the CRM answered 503');
    const ops = new RecordingFlowOperations({ findError: down });
    await expect(adapter.run(ops)).rejects.toBe(down);
    expect(ops.performed.map((c) => c.op)).toEqual(['find']);
  });
});

runFlowAdapterSuite(adapter);
