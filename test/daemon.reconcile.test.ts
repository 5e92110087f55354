/** The daemon's scheduled reconcile (a tenant's `reconcile` setting): passes, metrics, log lines, repair, stop. */
import { createLogger, SqliteStore } from '@crm-sync/runner';
import { TENANT, event, post, useDaemonEnv } from './daemon.support';

const fixture = useDaemonEnv();

async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const metric = (text: string, line: string) => new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1];

test('every pass reads the synced leads back: disagreements are counted and logged without their values, and repaired', async () => {
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (line: string) => { lines.push(line); } } });
  const daemon = await fixture.start(fixture.env.config({}, { reconcile: { every: '1s', perSecond: 100, repair: true } }), logger);
  const crm = fixture.env.crm;
  expect((await post(`${daemon.url}/v1/events`, [event(1), event(2)])).status).toBe(202);
  await daemon.runner.whenIdle();
  const lead = crm.leads().find((l) => l.phone === event(1).phone)!;
  crm.editLead(lead.lead_id, { custom_fields: { city: 'Secret Town' } });

  // A pass finds it, the daemon sends it again, and the CRM holds what was synced.
  await waitUntil('the lead repaired', () => crm.leads().find((l) => l.lead_id === lead.lead_id)!.custom_fields.city === 'Mumbai');
  const logged = lines.map((l) => JSON.parse(l));
  const differs = logged.find((l) => l.msg === 'reconcile: lead differs');
  expect(differs).toMatchObject({ level: 'warn', tenant: TENANT, contactId: 'c1', leadId: lead.lead_id, fields: ['custom_fields.city'] });
  expect(lines.join('')).not.toContain('Secret Town');

  await waitUntil('a pass that finds every lead as synced', async () => {
    const text = await (await fetch(`${daemon.url}/metrics`)).text();
    return Number(metric(text, `crm_sync_reconcile_leads_total{tenant="${TENANT}",state="match"}`) ?? 0) >= 3;
  });
  const text = await (await fetch(`${daemon.url}/metrics`)).text();
  expect(metric(text, `crm_sync_reconcile_leads_total{tenant="${TENANT}",state="differs"}`)).toBe('1');
  expect(Number(metric(text, `crm_sync_reconcile_last_pass_timestamp_seconds{tenant="${TENANT}"}`))).toBeGreaterThan(Date.now() / 1000 - 30);
  expect(logged.find((l) => l.msg === 'reconcile: pass finished')).toMatchObject({ tenant: TENANT, checked: 2, repaired: 1, complete: true });
});

test('stopping the daemon stops a pass in the middle: reads in flight finish, no new one starts', async () => {
  const daemon = await fixture.start(fixture.env.config({}, { reconcile: { every: '1s', perSecond: 2 } }));
  const crm = fixture.env.crm;
  expect((await post(`${daemon.url}/v1/events`, Array.from({ length: 10 }, (_, i) => event(i + 1)))).status).toBe(202);
  await daemon.runner.whenIdle();
  const fetchesBefore = crm.requests().filter((r) => r.route === 'fetch').length;
  await waitUntil('the pass begun', () => crm.requests().filter((r) => r.route === 'fetch').length > fetchesBefore);
  const started = Date.now();
  await daemon.stop();
  // Ten reads at 2 a second take 4.5 s or more: the stop did not wait for the pass to end.
  expect(Date.now() - started).toBeLessThan(4000);
  expect(crm.requests().filter((r) => r.route === 'fetch').length - fetchesBefore).toBeLessThan(10);
  const after = crm.requests().length;
  await new Promise((r) => setTimeout(r, 1200));
  expect(crm.requests().length).toBe(after);
});

test('reload restarts the reconcile schedule with the new settings; other changed settings are named, not applied; a broken tenant changes nothing', async () => {
  const daemon = await fixture.start(fixture.env.config());
  const withReconcile = fixture.env.config({}, { reconcile: { every: '1s', perSecond: 100 } });
  expect((await post(`${daemon.url}/v1/events`, [event(1)])).status).toBe(202);
  await daemon.runner.whenIdle();

  expect(await daemon.reload(withReconcile)).toEqual({ added: [], removed: [], changed: [], mappingChanged: [], applied: [], needRestart: [] });
  await waitUntil('a scheduled pass', async () => {
    const text = await (await fetch(`${daemon.url}/metrics`)).text();
    return Number(metric(text, `crm_sync_reconcile_leads_total{tenant="${TENANT}",state="match"}`) ?? 0) >= 1;
  });

  const moved = { ...withReconcile, listen: { host: '127.0.0.1', port: 1 }, maxBodyBytes: 2048, drainMs: 3000, retry: { ...withReconcile.retry, budgetMs: 60_000 } };
  expect(await daemon.reload(moved)).toMatchObject({ applied: ['drain', 'retry'], needRestart: ['listen', 'maxBodyBytes'] });
  const broken = fixture.env.config({}, { mapping: 'no/such/mapping.yaml' });
  await expect(daemon.reload(broken)).rejects.toMatchObject({ code: 'ERR_MAPPING_READ' });
  // Still running as it was.
  expect((await post(`${daemon.url}/v1/events`, [event(2)])).status).toBe(202);
});

test('runners sharing a store take turns: while another holds the tenant\'s pass, this daemon skips it', async () => {
  const config = fixture.env.config({}, { reconcile: { every: '1s', perSecond: 100 } });
  const other = new SqliteStore((config.store as { path: string }).path);
  try {
    expect(await other.holdJob(`reconcile:${TENANT}`, 'another-runner', Date.now() + 60_000, Date.now())).toBe(true);
    const daemon = await fixture.start(config);
    expect((await post(`${daemon.url}/v1/events`, [event(1)])).status).toBe(202);
    await daemon.runner.whenIdle();
    const fetches = () => fixture.env.crm.requests().filter((r) => r.route === 'fetch').length;
    const synced = fetches();
    await new Promise((r) => setTimeout(r, 2500));
    expect(fetches()).toBe(synced);

    await other.releaseJob(`reconcile:${TENANT}`, 'another-runner');
    await waitUntil('a pass once the other runner let go', () => fetches() > synced);
  } finally {
    await other.close();
  }
});

test('reload applies the log level at once (and says what it applied)', async () => {
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (line: string) => { lines.push(line); } } });
  const daemon = await fixture.start(fixture.env.config(), logger);
  expect(await daemon.reload(fixture.env.config({ logLevel: 'warn' }))).toMatchObject({ applied: ['logLevel'], needRestart: [] });
  expect(logger.level).toBe('warn');
  const before = lines.length;
  expect((await post(`${daemon.url}/v1/events`, [event(1)])).status).toBe(202);
  await daemon.runner.whenIdle();
  // The sync's info line ('synced') is no longer written.
  expect(lines.slice(before).map((l) => JSON.parse(l).msg)).not.toContain('synced');
  expect(await daemon.reload(fixture.env.config({ logLevel: 'warn' }))).toMatchObject({ applied: [] });
});
