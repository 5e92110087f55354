/**
 * The daemon as a real child process (`node packages/cli/dist/bin.js run`; needs `pnpm build`): start-up errors,
 * SIGTERM drain, kill -9 in the middle of a stream, and SIGHUP reloads.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonClient, DaemonRequestError, SqliteStore } from '@crm-sync/runner';
import { checkLeads, planStream, sliceStream } from '@crm-sync/testkit';
import { BIN, CRM_KEY, SEED_MAPPING, event, seedMappingWithTimeout, spawnDaemon, testEnv, writeConfig, type ChildDaemon, type TestEnv } from './daemon.support';

let env: TestEnv;
const children: ChildDaemon[] = [];

beforeEach(async () => { env = await testEnv(); });
afterEach(async () => {
  for (const c of children.splice(0)) if (c.proc.exitCode === null && c.proc.signalCode === null) { c.proc.kill('SIGKILL'); await c.exited; }
  await env.cleanup();
});

async function start(config: string): Promise<ChildDaemon> {
  const child = await spawnDaemon(['--config', config], { SEED_CRM_AUTH_KEY: CRM_KEY });
  children.push(child);
  return child;
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a bad config exits 1 before listening, naming the file, the path and the reason', () => {
  const file = join(env.dataDir, 'bad.yaml');
  writeFileSync(file, `listen: 127.0.0.1:0\ntenants:\n  acme: { mapping: ${JSON.stringify(join(env.dataDir, 'missing.yaml'))}, quiet: soon }\n`);
  const bad = spawnSync(process.execPath, [BIN, 'run', '--config', file], { encoding: 'utf8', env: { ...process.env, SEED_CRM_AUTH_KEY: CRM_KEY } });
  expect(bad.status).toBe(1);
  expect(bad.stderr).toContain(`${file}: tenants.acme.quiet: must be a duration such as 300ms, 5m or 1h`);
  expect(bad.stdout).not.toContain('listening');

  writeFileSync(file, `listen: 127.0.0.1:0\ntenants:\n  acme: { mapping: ${JSON.stringify(join(env.dataDir, 'missing.yaml'))} }\n`);
  const missing = spawnSync(process.execPath, [BIN, 'run', '--config', file], { encoding: 'utf8', env: { ...process.env, SEED_CRM_AUTH_KEY: CRM_KEY } });
  expect(missing.status).toBe(1);
  expect(missing.stderr).toContain('missing.yaml: (file): cannot be read: ENOENT (the file tenants.acme.mapping names)');
});

test('SIGTERM: stops accepting, lets the sync in flight finish and store its lead id, exits 0', async () => {
  const config = writeConfig(env.dataDir, env.crm.url);
  env.crm.addFault({ route: 'create', latencyMs: 1000, times: 1 });
  const daemon = await start(config);
  const client = new DaemonClient(daemon.url);
  await client.ingest([event(1)]);
  await until('the create is in flight', () => env.crm.requests().some((r) => r.route === 'create'));

  daemon.proc.kill('SIGTERM');
  expect(await daemon.exited).toEqual({ code: 0, signal: null });
  expect(daemon.stdout.some((l) => l.includes('"msg":"stopped"'))).toBe(true);
  expect(env.crm.leads()).toHaveLength(1);

  // The answer of the drained create was stored: a restart has nothing left to do and makes no call.
  const calls = env.crm.requests().length;
  const again = await start(config);
  const contact = await new DaemonClient(again.url).contact('acme', 'c1');
  expect(contact).toMatchObject({ state: 'synced', leadId: env.crm.leads()[0]!.lead_id, lastOutcome: 'created' });
  await new Promise((r) => setTimeout(r, 300));
  expect(env.crm.requests()).toHaveLength(calls);
});

test('kill -9 during a stream (with a create sent and its id not yet stored), then restart: every contact\'s final state, no duplicate lead', async () => {
  const config = writeConfig(env.dataDir, env.crm.url);
  // Every create answers late, so the kill lands between "create sent" and "lead id stored".
  env.crm.addFault({ route: 'create', latencyMs: 300 });
  const { plan, expected } = planStream({ contacts: 60, seed: 3 });
  let daemon = await start(config);
  let client = new DaemonClient(daemon.url);

  let killed = false;
  for (const [slice, planned] of sliceStream(plan, 100).entries()) {
    const events = planned.map((p) => p.event);
    if (!killed && slice >= 10) {
      await until('a create is waiting for its answer', () => env.crm.requests().some((r) => r.route === 'create' && r.status === 0));
      daemon.proc.kill('SIGKILL');
      await daemon.exited;
      killed = true;
      // A client whose batch was not acknowledged sends it again once the daemon is back.
      await expect(client.ingest(events)).rejects.toBeInstanceOf(DaemonRequestError);
      daemon = await start(config);
      client = new DaemonClient(daemon.url);
    }
    if (events.length > 0) await client.ingest(events);
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(killed).toBe(true);
  await client.waitUntilIdle({ timeoutMs: 20_000 });

  expect(checkLeads(env.crm.leads(), expected).problems).toEqual([]);
});

test('kill -9 with the default lease, then restart: the contacts that were in flight are synced within seconds, no duplicate lead', async () => {
  // The seed mapping with a 2 s request timeout: a create the dead process sent may still land for that long, so
  // its contact is retried (fetch first) after it, rather than after the lease (30 s).
  const mapping = seedMappingWithTimeout(env.dataDir, 2000);
  const config = join(env.dataDir, 'default-lease.yaml');
  writeFileSync(config, [
    'listen: 127.0.0.1:0',
    'dataDir: ./data',
    'allowHosts: [127.0.0.1]',
    'tenants:',
    `  acme: { mapping: ${JSON.stringify(mapping)}, baseUrl: ${JSON.stringify(env.crm.url)}, quiet: 100ms }`,
  ].join('\n'));
  // Slow answers, so the kill finds syncs both before and after their create was sent.
  env.crm.addFault({ route: 'fetch', latencyMs: 200 });
  env.crm.addFault({ route: 'create', latencyMs: 300 });
  const contacts = Array.from({ length: 12 }, (_, n) => event(n));
  const daemon = await start(config);
  await new DaemonClient(daemon.url).ingest(contacts);
  await until('a create is waiting for its answer', () => env.crm.requests().some((r) => r.route === 'create' && r.status === 0));
  daemon.proc.kill('SIGKILL');
  await daemon.exited;

  const file = join(env.dataDir, 'data', 'crm-sync.db');
  const left = new SqliteStore(file);
  expect((await left.counts(Date.now())).inFlight).toBeGreaterThan(0);
  await left.close();

  const restarted = Date.now();
  const again = await start(config);
  await new DaemonClient(again.url).waitUntilIdle({ timeoutMs: 10_000 });
  expect(Date.now() - restarted).toBeLessThan(10_000);
  const takeOver = again.stdout.filter((l) => l.includes('took over the contacts of dead runners')).map((l) => JSON.parse(l) as { contacts: number })[0];
  expect(takeOver?.contacts).toBeGreaterThan(0);

  const leads = env.crm.leads();
  expect(leads.map((l) => l.email).sort()).toEqual(contacts.map((c) => c.email).sort());
});

test('SIGHUP: reads the config again and applies its tenants (added, changed, removed) without a restart; a broken config changes nothing', async () => {
  const config = writeConfig(env.dataDir, env.crm.url);
  const daemon = await start(config);
  const client = new DaemonClient(daemon.url);
  await expect(client.ingest([{ ...event(1), tenant: 'globex' }])).resolves.toMatchObject({ accepted: 0, rejected: [{ errors: [{ field: 'tenant' }] }] });
  const reloads = () => daemon.stdout.filter((l) => l.includes('"msg":"reloaded"')).length;

  // Add a tenant.
  writeFileSync(config, `${readFileSync(config, 'utf8')}\n  globex: { mapping: ${JSON.stringify(SEED_MAPPING)}, baseUrl: ${JSON.stringify(env.crm.url)}, quiet: 100ms, maxWait: 1s }\n`);
  daemon.proc.kill('SIGHUP');
  await until('the reload', () => reloads() === 1);
  expect(daemon.stdout.find((l) => l.includes('"msg":"reloaded"'))).toContain('"added":["globex"]');
  await expect(client.ingest([{ ...event(2), tenant: 'globex' }])).resolves.toMatchObject({ accepted: 1 });
  await until('globex synced', () => env.crm.leads().length === 1);

  // A config that does not load: logged, and the daemon goes on as it was.
  const good = readFileSync(config, 'utf8');
  writeFileSync(config, good.replace('quiet: 100ms', 'quiet: soon'));
  daemon.proc.kill('SIGHUP');
  await until('the refusal', () => daemon.stdout.some((l) => l.includes('reload: the config does not load; nothing changed')));
  await expect(client.ingest([{ ...event(3), tenant: 'globex' }])).resolves.toMatchObject({ accepted: 1 });

  // Remove it again: its events are refused; the daemon still runs acme.
  writeFileSync(config, good.split('\n').filter((l) => !l.includes('globex')).join('\n'));
  daemon.proc.kill('SIGHUP');
  await until('the second reload', () => reloads() === 2);
  await expect(client.ingest([{ ...event(4), tenant: 'globex' }])).resolves.toMatchObject({ accepted: 0 });
  await expect(client.ingest([event(5)])).resolves.toMatchObject({ accepted: 1 });
  daemon.proc.kill('SIGTERM');
  expect(await daemon.exited).toEqual({ code: 0, signal: null });
});
