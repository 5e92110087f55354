import { registerBuiltinAdapters } from '@crm-sync/runner';
import { compileMapping, dryRun } from '../index';

/** Readers decide "found", "failed", "conflict": a bare 0 or "" is false, as JSONata's $boolean reads it. */
const mapping = `
name: reader-truthiness
baseUrl: https://crm.example.com
auth: { adapter: none }
flow: no-fetch
payload: '{"phone": contact.phone}'
endpoints:
  create: { method: POST, url: /crm/create, responses: { conflictLeadId: body.existing_id } }
  update: { method: POST, url: "/crm/update/{{leadId}}" }
responses:
  leadId: body.id
  failed: body.error_code
`;

beforeAll(() => registerBuiltinAdapters());

const contact = { contactId: 'c1', phone: '+919876543210' };

it('an error code 0 is not a failure', async () => {
  const run = await dryRun(compileMapping(mapping), contact, { responses: { create: { status: 200, body: { id: 'L1', error_code: 0 } } } });
  expect(run.error).toBeUndefined();
  expect(run.result).toMatchObject({ action: 'created', leadId: 'L1' });
});

it('a non-zero error code is a failure', async () => {
  const run = await dryRun(compileMapping(mapping), contact, { responses: { create: { status: 200, body: { id: 'L1', error_code: 7 } } } });
  expect(run.error?.code).toBe('ERR_CRM_REJECTED');
});

it('an empty conflict id is no conflict: the create stands, nothing is updated', async () => {
  const run = await dryRun(compileMapping(mapping), contact, { responses: { create: { status: 200, body: { id: 'L1', existing_id: '' } } } });
  expect(run.requests.map((r) => r.step)).toEqual(['create']);
  expect(run.result).toMatchObject({ action: 'created', leadId: 'L1' });
});
