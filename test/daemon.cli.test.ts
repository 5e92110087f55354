/** The daemon's CLI commands in-process: demo, ingest, status, dead-letters, resync, backfill (resumable), reconcile. */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { main } from '@crm-sync/cli';
import { checkLeads, planStream } from '@crm-sync/testkit';
import { BIN, REPO, TENANT, SEED_MAPPING, event, useDaemonEnv } from './daemon.support';

async function cli(argv: string[], signal?: AbortSignal): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t), signal });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const fixture = useDaemonEnv();

test('crm-sync demo: streams changes through the daemon and checks every lead against the final states', async () => {
  const r = await cli(['demo', '--contacts', '40', '--seed', '5']);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/events: +\d+ sent · \d+ accepted \(\d+ changed nothing: redelivered or out of order\) · \d+ rejected/);
  expect(r.out).toMatch(/CRM calls: fetch 40 · create 40 · update \d+/);
  expect(r.out).toContain('CHECK OK: the CRM holds exactly one lead per contact (40)');
  expect(r.out).toMatch(/\nreconcile demo: 40 checked · 40 match · 0 differ · 0 missing · 0 other lead · 0 failed$/);
});

test('`pnpm crm-sync` reads a relative path from the directory it was typed in, not the checkout\'s root', async () => {
  const run = (cwd: string, file: string) => new Promise<{ code: number; out: string }>((resolve) => {
    execFile('pnpm', ['-s', 'crm-sync', 'validate', file], { cwd, env: { ...process.env, CI: 'true' } }, (err, stdout) => resolve({ code: err ? Number(err.code ?? 1) : 0, out: stdout }));
  });
  const docs = join(REPO, 'docs');
  expect(await run(docs, '../mappings/seed-contract.yaml')).toEqual({ code: 0, out: expect.stringContaining('ok ../mappings/seed-contract.yaml') });
  expect((await run(docs, 'mappings/seed-contract.yaml')).code).not.toBe(0); // not a file under docs/
}, 30_000);

test('the demo\'s check fails on a duplicate lead, a missing lead, or a field that differs', () => {
  const { expected } = planStream({ contacts: 2, seed: 1 });
  const [a, b] = [...expected.values()];
  const lead = (c: typeof a, over: Record<string, unknown> = {}) => ({
    lead_id: `L-${c!.contactId}`, phone: c!.phone, name: c!.name, email: c!.email, custom_fields: c!.attributes,
    created_at: '', updated_at: '', version: 1, ...over,
  });
  expect(checkLeads([lead(a), lead(b)], expected).problems).toEqual([]);
  expect(checkLeads([lead(a), lead(b), lead(b, { lead_id: 'dup' })], expected)).toMatchObject({
    duplicates: 1, problems: [`${b!.contactId}: 2 leads for ${b!.phone}, expected 1`],
  });
  expect(checkLeads([lead(a)], expected)).toMatchObject({ missing: 1, problems: [`${b!.contactId}: 0 leads for ${b!.phone}, expected 1`] });
  expect(checkLeads([lead(a), lead(b, { name: 'Someone Else' })], expected).problems[0]).toMatch(/is .*Someone Else.*, expected/);
});

test('crm-sync ingest: sends the file in batches; rejections by line number; exit 1 when any is rejected', async () => {
  const daemon = await fixture.start(fixture.env.config());
  const file = join(fixture.env.dataDir, 'events.ndjson');
  writeFileSync(file, [JSON.stringify(event(1)), '', JSON.stringify(event(2, { eventId: 'bad', phone: '' })), '{oops', JSON.stringify(event(3))].join('\n'));
  const r = await cli(['ingest', file, '--url', daemon.url, '--batch', '1']);
  expect(r.code).toBe(1);
  expect(r.out).toBe('read 4 events, sent 3: accepted 2 (0 changed nothing), rejected 2 (1 unreadable: not JSON or not UTF-8, not sent)');
  expect(r.err.split('\n')).toEqual(['line 3 (eventId bad): phone: is required', expect.stringMatching(/^line 4: \(line\): not JSON: /)]);
  await daemon.runner.whenIdle();
  expect(fixture.env.crm.leads()).toHaveLength(2);
});

test('crm-sync ingest reads the file as UTF-8: a byte-order mark is dropped, a line that is not UTF-8 is reported and not sent', async () => {
  const daemon = await fixture.start(fixture.env.config());
  const file = join(fixture.env.dataDir, 'events.ndjson');
  const latin1 = Buffer.from(JSON.stringify(event(2, { name: 'Jos\u00e9' })), 'latin1');
  writeFileSync(file, Buffer.concat([Buffer.from('\uFEFF' + JSON.stringify(event(1)) + '\r\n'), latin1, Buffer.from('\r\n' + JSON.stringify(event(3, { name: 'Zo\u00eb' })))]));
  const r = await cli(['ingest', file, '--url', daemon.url]);
  expect(r.err).toBe('line 2: (line): not valid UTF-8 (save the file as UTF-8)');
  expect(r).toMatchObject({ code: 1, out: 'read 3 events, sent 2: accepted 2 (0 changed nothing), rejected 1 (1 unreadable: not JSON or not UTF-8, not sent)' });
  await daemon.runner.whenIdle();
  expect(fixture.env.crm.leads().map((l) => l.name).sort()).toEqual(['Contact 1', 'Zoë']);
});

test('crm-sync ingest stopped by a batch the daemon refuses still reports what the batches before it got', async () => {
  const daemon = await fixture.start(fixture.env.config({ maxBodyBytes: 4096 }));
  const file = join(fixture.env.dataDir, 'events.ndjson');
  writeFileSync(file, [JSON.stringify(event(1, { eventId: 'bad', phone: 'x' })), JSON.stringify(event(2)), JSON.stringify(event(3, { name: 'n'.repeat(1000), attributes: { note: 'y'.repeat(5000) } }))].join('\n'));
  const r = await cli(['ingest', file, '--url', daemon.url, '--batch', '2']);
  expect(r.code).toBe(1);
  expect(r.out).toBe('read 3 events, sent 2: accepted 1 (0 changed nothing), rejected 1; 1 in a batch the daemon did not take (below)');
  const err = r.err.split('\n');
  expect(err[0]).toMatch(/^line 1 \(eventId bad\): phone: /);
  expect(err[1]).toMatch(/^stopped at line 3: the batch of line 3 was not accepted/);
  expect(err[2]).toMatch(/^crm-sync ingest: .*413/);
});

test('the commands that talk to the daemon take its address and token from its config file (--config)', async () => {
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => { const p = (probe.address() as AddressInfo).port; probe.close(() => resolve(p)); });
  });
  process.env.CLI_CONFIG_TEST_TOKEN = 'cfg-token-1';
  const file = join(fixture.env.dataDir, 'crm-sync.yaml');
  writeFileSync(file, [
    `listen: 0.0.0.0:${port}`, 'ingestToken: env:CLI_CONFIG_TEST_TOKEN', `dataDir: ${fixture.env.dataDir}`, 'allowHosts: [127.0.0.1]',
    `tenants: { ${TENANT}: { mapping: ${JSON.stringify(SEED_MAPPING)}, baseUrl: ${JSON.stringify(fixture.env.crm.url)} } }`,
  ].join('\n'));
  await fixture.start(fixture.env.config({ listen: `127.0.0.1:${port}`, ingestToken: 'env:CLI_CONFIG_TEST_TOKEN' }));
  const saved = process.env.CRM_SYNC_INGEST_TOKEN;
  delete process.env.CRM_SYNC_INGEST_TOKEN;
  try {
    expect(await cli(['status', '--url', `http://127.0.0.1:${port}`])).toMatchObject({ code: 1, err: expect.stringContaining('401') });
    expect(await cli(['status', '--config', file])).toMatchObject({ code: 0, out: 'pending 0 · in flight 0 · retrying 0 · dead letters 0 · leads 0' });
    expect((await cli(['dead-letters', 'list', '--config', file])).code).toBe(0);
  } finally {
    if (saved !== undefined) process.env.CRM_SYNC_INGEST_TOKEN = saved;
    delete process.env.CLI_CONFIG_TEST_TOKEN;
  }
});

test('crm-sync status and dead-letters list / replay, through the daemon\'s API', async () => {
  const daemon = await fixture.start(fixture.env.config());
  fixture.env.crm.addFault({ route: 'create', status: 400 });
  await fetch(`${daemon.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event(1)) });
  await daemon.runner.whenIdle();

  const list = await cli(['dead-letters', 'list', '--url', daemon.url]);
  expect(list.code).toBe(0);
  expect(list.out).toMatch(new RegExp(`^${TENANT} / c1 .*\\[permanent\\]\\n  ERR_\\w+: .*\\(step create, HTTP 400\\)`));
  const status = await cli(['status', TENANT, 'c1', '--url', daemon.url]);
  expect(status.out).toContain('state:        dead-letter');

  fixture.env.crm.clearFaults();
  expect((await cli(['dead-letters', 'replay', TENANT, 'c1', '--url', daemon.url])).out).toBe('replayed 1 contact(s)');
  await daemon.runner.whenIdle();
  const after = await cli(['status', TENANT, 'c1', '--url', daemon.url]);
  expect(after.out).toContain(`lead id:      ${fixture.env.crm.leads()[0]!.lead_id}`);
  // Two syncs, the dead-lettered one and the replay: counted as what they are, not as retries of the last.
  expect(after.out).toContain('last outcome: created (2 attempts in all, every sync counted)');
  expect(after.out).toMatch(/create +POST http:\/\/127\.0\.0\.1:\d+\/crm\/create → 200/);
  expect((await cli(['status', '--url', daemon.url])).out).toBe('pending 0 · in flight 0 · retrying 0 · dead letters 0 · leads 1');
  expect((await cli(['status', TENANT, 'nobody', '--url', daemon.url])).code).toBe(1);
  expect((await cli(['dead-letters', 'replay', '--url', daemon.url])).code).toBe(2);

  const calls = fixture.env.crm.requests().length;
  expect((await cli(['resync', TENANT, 'c1', '--url', daemon.url])).out).toBe(`marked 1 contact(s) of ${TENANT} to be sent again`);
  await daemon.runner.whenIdle();
  expect(fixture.env.crm.requests().slice(calls).map((r) => r.route)).toEqual(['update']);
  expect((await cli(['resync', TENANT, '--all', '--per-second', '5', '--url', daemon.url])).out).toBe(`marked 1 contact(s) of ${TENANT} to be sent again`);
  for (const bad of [['resync', '--url', daemon.url], ['resync', TENANT, '--url', daemon.url], ['resync', TENANT, 'c1', '--all', '--url', daemon.url],
    ['resync', TENANT, '--all', '--per-second', '0', '--url', daemon.url]]) {
    expect((await cli(bad)).code).toBe(2);
  }
  expect((await cli(['resync', 'nobody', '--all', '--url', daemon.url])).code).toBe(1);
  const unreachable = await cli(['status', '--url', 'http://127.0.0.1:9']);
  expect(unreachable).toMatchObject({ code: 1, err: expect.stringContaining('cannot reach the daemon at http://127.0.0.1:9') });
});

test('crm-sync backfill: syncs a CSV or NDJSON file now; interrupted, it resumes after the last done batch without duplicates', async () => {
  const flags = ['--mapping', SEED_MAPPING, '--tenant', TENANT, '--base-url', fixture.env.crm.url, '--allow-host', '127.0.0.1', '--data', fixture.env.dataDir];
  const csv = join(fixture.env.dataDir, 'contacts.csv');
  writeFileSync(csv, 'contactId,phone,name,email,tags,city\nk1,+919876500001,"Iyer, Meera",meera@example.com,vip;web,Pune\nk2,+919876500002,Dev,,,\n');
  const fromCsv = await cli(['backfill', csv, ...flags]);
  expect(fromCsv).toMatchObject({ code: 0, out: 'backfill: done: 2 events accepted, 0 rejected' });
  expect(fixture.env.crm.leads().map((l) => [l.name, l.email, l.custom_fields])).toEqual([['Iyer, Meera', 'meera@example.com', { city: 'Pune' }], ['Dev', undefined, {}]]);

  const file = join(fixture.env.dataDir, 'contacts.ndjson');
  writeFileSync(file, Array.from({ length: 60 }, (_, i) => JSON.stringify(event(100 + i))).join('\n') + '\n');
  fixture.env.crm.addFault({ route: 'create', latencyMs: 20 });
  const stop = new AbortController();
  const watch = setInterval(() => { if (fixture.env.crm.leads().length >= 2 + 25) stop.abort(); }, 5);
  const first = await cli(['backfill', file, ...flags, '--batch', '20'], stop.signal);
  clearInterval(watch);
  expect(first.code).toBe(1);
  expect(first.err).toMatch(/interrupted; lines up to 20 are done/);
  expect(readdirSync(join(fixture.env.dataDir, 'backfill')).length).toBe(2);

  const second = await cli(['backfill', file, ...flags, '--batch', '20']);
  expect(second.err).toContain('resuming contacts.ndjson after line 20');
  expect(second).toMatchObject({ code: 0, out: expect.stringContaining('backfill: done: ') });
  expect(fixture.env.crm.leads()).toHaveLength(62);
  expect(new Set(fixture.env.crm.leads().map((l) => l.phone)).size).toBe(62);
  expect((await cli(['backfill', file, ...flags])).out).toContain('was already backfilled');
  expect(existsSync(join(fixture.env.dataDir, 'crm-sync.db'))).toBe(true);
});

test('crm-sync backfill waits for each contact where validation put it: a blank tenant is the default one', async () => {
  const flags = ['--mapping', SEED_MAPPING, '--tenant', TENANT, '--base-url', fixture.env.crm.url, '--allow-host', '127.0.0.1', '--data', fixture.env.dataDir];
  const file = join(fixture.env.dataDir, 'blank-tenant.ndjson');
  writeFileSync(file, Array.from({ length: 30 }, (_, i) => JSON.stringify({ ...event(200 + i), tenant: '' })).join('\n') + '\n');
  fixture.env.crm.addFault({ route: 'create', latencyMs: 20 });
  const r = await cli(['backfill', file, ...flags]);
  expect(r).toMatchObject({ code: 0, out: 'backfill: done: 30 events accepted, 0 rejected' });
  // "done" means synced: every contact is a lead by the time it says so.
  expect(fixture.env.crm.leads()).toHaveLength(30);
});

test('crm-sync backfill refuses a CSV whose header could only have every row rejected, before sending anything; an NDJSON file may start with a byte-order mark', async () => {
  const flags = ['--mapping', SEED_MAPPING, '--tenant', TENANT, '--base-url', fixture.env.crm.url, '--allow-host', '127.0.0.1', '--data', fixture.env.dataDir];
  const csv = join(fixture.env.dataDir, 'contacts.csv');
  writeFileSync(csv, 'contact_id,Phone,name\nk1,+919876500001,Meera\n');
  const r = await cli(['backfill', csv, ...flags]);
  expect(r.code).toBe(1);
  expect(r.err).toContain('contacts.csv line 1 (the header row): no contactId or phone column (the columns are "contact_id", "Phone", "name"; names are case-sensitive');
  writeFileSync(csv, 'contactId,phone,name,name\nk1,+919876500001,Meera,M\n');
  expect((await cli(['backfill', csv, ...flags])).err).toContain('the column "name" is named twice');
  writeFileSync(csv, 'contactId,phone,__proto__\nk1,+919876500001,x\n');
  expect((await cli(['backfill', csv, ...flags])).err).toContain('the column "__proto__" is not a usable attribute name (JavaScript reserves it): rename the column');
  expect(fixture.env.crm.requests()).toEqual([]);

  const ndjson = join(fixture.env.dataDir, 'bom.ndjson');
  writeFileSync(ndjson, '\uFEFF' + [event(1), event(2)].map((e) => JSON.stringify(e)).join('\n'));
  expect(await cli(['backfill', ndjson, ...flags])).toMatchObject({ code: 0, out: 'backfill: done: 2 events accepted, 0 rejected' });
});

test('crm-sync reconcile: beside the running daemon, finds a lead changed in the CRM; --repair has the daemon send it again', async () => {
  const daemon = await fixture.start(fixture.env.config());
  await fetch(`${daemon.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([event(1), event(2)]) });
  await daemon.runner.whenIdle();
  const crm = fixture.env.crm;
  const lead1 = crm.leads().find((l) => l.phone === event(1).phone)!.lead_id;
  const flags = ['--mapping', SEED_MAPPING, '--tenant', TENANT, '--base-url', crm.url, '--allow-host', '127.0.0.1', '--data', fixture.env.dataDir, '--per-second', '100'];

  expect(await cli(['reconcile', TENANT, ...flags])).toMatchObject({
    code: 0, out: `reconcile ${TENANT}: 2 checked · 2 match · 0 differ · 0 missing · 0 other lead · 0 failed`,
  });

  const original = crm.leads().find((l) => l.lead_id === lead1)!.name;
  crm.editLead(lead1, { name: 'Edited by hand' });
  const found = await cli(['reconcile', TENANT, ...flags]);
  expect(found.code).toBe(1);
  expect(found.out.split('\n')).toEqual([
    `c1 (lead ${lead1}): differs: name sent ${JSON.stringify(original)}, the CRM has "Edited by hand"`,
    `reconcile ${TENANT}: 2 checked · 1 match · 1 differ · 0 missing · 0 other lead · 0 failed`,
  ]);
  const json = await cli(['reconcile', TENANT, 'c1', 'c9', ...flags, '--json']);
  const lines = json.out.split('\n').map((l) => JSON.parse(l));
  // A line per contact as its check ends (in any order), then the report.
  expect(lines.slice(0, -1).sort((a, b) => a.contactId.localeCompare(b.contactId))).toEqual([
    { contactId: 'c1', leadId: lead1, state: 'differs', differences: [{ path: 'name', sent: original, crm: 'Edited by hand' }] },
    { contactId: 'c9', state: 'not-synced' },
  ]);
  expect(lines.at(-1)).toEqual({ report: expect.objectContaining({ tenant: TENANT, checked: 2, repaired: 0, complete: true }) });

  const repaired = await cli(['reconcile', TENANT, ...flags, '--repair']);
  expect(repaired.out).toMatch(/· 1 marked to be sent again$/);
  // The daemon (another store handle on the same file) sees the mark and updates the lead back.
  await waitUntil(() => crm.leads().find((l) => l.lead_id === lead1)!.name === original);
  await daemon.runner.whenIdle();
  expect(await cli(['reconcile', TENANT, ...flags])).toMatchObject({ code: 0 });

  for (const bad of [['reconcile', ...flags], ['reconcile', TENANT, ...flags, '--per-second', '0'], ['reconcile', TENANT, ...flags, '--limit', '1.5'], ['reconcile', 'nobody', ...flags]]) {
    expect((await cli(bad)).code).toBe(2);
  }
});

test('crm-sync reconcile as its own process: a slow pace does not end it early (its timers alone would let Node exit)', async () => {
  const daemon = await fixture.start(fixture.env.config());
  await fetch(`${daemon.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([event(1), event(2), event(3)]) });
  await daemon.runner.whenIdle();
  const crm = fixture.env.crm;
  crm.editLead(crm.leads().find((l) => l.phone === event(2).phone)!.lead_id, { name: 'Edited by hand' });
  const flags = ['--mapping', SEED_MAPPING, '--tenant', TENANT, '--base-url', crm.url, '--allow-host', '127.0.0.1', '--data', fixture.env.dataDir, '--per-second', '4'];
  const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
    execFile(process.execPath, [BIN, 'reconcile', TENANT, ...flags], { env: process.env }, (error, stdout) => {
      if (error && typeof error.code !== 'number') reject(error);
      else resolve({ code: error ? (error.code as number) : 0, stdout });
    });
  });
  expect(stdout.trim().split('\n').at(-1)).toBe(`reconcile ${TENANT}: 3 checked · 2 match · 1 differ · 0 missing · 0 other lead · 0 failed`);
  expect(code).toBe(1);
});

async function waitUntil(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
