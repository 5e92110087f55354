import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, runCli, type CliRun } from './harness';

/** Starts `crm-sync mock-crm …` in-process; resolves once it has printed its URL. */
async function startMockCrm(args: string[]) {
  const stop = new AbortController();
  let done!: Promise<CliRun>;
  const text = await new Promise<string>((resolve, reject) => {
    done = runCli(['mock-crm', '--port', '0', ...args], {
      signal: stop.signal,
      onOut: (t) => { if (t.startsWith('Reference CRM listening on')) resolve(t); },
    });
    // After the banner this reject is a no-op: the command ending is then the expected outcome of stop().
    done.then((r) => reject(new Error(`mock-crm ended before listening: ${JSON.stringify(r)}`)), reject);
  });
  const url = /listening on (\S+)/.exec(text)![1]!;
  return { url, banner: text, stop: async () => { stop.abort(); return done; } };
}

const create = (url: string, headers: Record<string, string>) => fetch(`${url}/crm/create`, {
  method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ phone: '+919876543210', name: 'Priya' }),
});

describe('crm-sync mock-crm', () => {
  test('serves the contract with the given key and its admin API, then stops cleanly', async () => {
    const crm = await startMockCrm(['--key', 'k-123']);
    expect(crm.banner).toContain(`GET             ${crm.url}/_admin/leads`);
    expect(crm.banner).not.toContain('generated');

    expect((await create(crm.url, { 'Auth-Key': 'wrong' })).status).toBe(401);
    const ok = await create(crm.url, { 'Auth-Key': 'k-123' });
    expect(await ok.json()).toMatchObject({ lead_id: 'L000001', status: 'Successfully Created' });
    expect(await (await fetch(`${crm.url}/_admin/leads`)).json()).toMatchObject([{ lead_id: 'L000001', name: 'Priya' }]);

    const run = await crm.stop();
    expect(run).toMatchObject({ code: 0, err: '' });
    expect(run.out).toMatch(/Reference CRM stopped \(abort\)\.$/);
    await expect(fetch(`${crm.url}/_admin/leads`)).rejects.toThrow();
  });

  test('without --key generates one, prints it, and requires it', async () => {
    const crm = await startMockCrm(['--auth', 'bearer']);
    try {
      const key = /key: {5}(\S+) {3}\(generated/.exec(crm.banner)?.[1];
      expect(key).toMatch(/^[A-Za-z0-9_-]{24}$/);
      expect((await create(crm.url, {})).status).toBe(401);
      expect((await create(crm.url, { Authorization: `Bearer ${key}` })).status).toBe(200);
    } finally {
      expect((await crm.stop()).code).toBe(0);
    }
  });

  test('--auth hmac checks signed requests: the signature of timestamp, method, path and body with the key', async () => {
    const crm = await startMockCrm(['--auth', 'hmac', '--key', 'k-123']);
    try {
      expect(crm.banner).toContain('hmac, header X-Signature: sha256=<hex HMAC-SHA256(key, "<X-Timestamp>.<METHOD>.<path?query>.<body>")>');
      const body = JSON.stringify({ phone: '+919876543210', name: 'Priya' });
      const ts = String(Math.floor(Date.now() / 1000));
      const sign = (key: string) => `sha256=${createHmac('sha256', key).update(`${ts}.POST./crm/create.${body}`).digest('hex')}`;
      const send = (signature: string) => fetch(`${crm.url}/crm/create`, { method: 'POST', headers: { 'content-type': 'application/json', 'X-Timestamp': ts, 'X-Signature': signature }, body });
      expect((await send(sign('other'))).status).toBe(401);
      expect((await send(sign('k-123'))).status).toBe(200);
    } finally {
      await crm.stop();
    }
  });

  test('--auth basic checks Basic credentials: the user (default crm-sync) and the key as its password', async () => {
    const crm = await startMockCrm(['--auth', 'basic', '--key', 'k:123', '--user', 'api']);
    try {
      expect(crm.banner).toContain('basic, header Authorization: Basic base64("api:<key>")');
      const basic = (pair: string) => ({ Authorization: `Basic ${Buffer.from(pair).toString('base64')}` });
      expect((await create(crm.url, basic('crm-sync:k:123'))).status).toBe(401);
      expect((await create(crm.url, basic('api:k:12'))).status).toBe(401);
      expect((await create(crm.url, basic('api:k:123'))).status).toBe(200);
    } finally {
      await crm.stop();
    }
  });

  test('the admin API changes or deletes a lead behind crm-sync\'s back (for trying reconcile)', async () => {
    const crm = await startMockCrm(['--auth', 'none']);
    try {
      expect(crm.banner).toContain(`PATCH|DELETE    ${crm.url}/_admin/leads/{id}`);
      const { lead_id: id } = await (await create(crm.url, {})).json() as { lead_id: string };
      const patch = (target: string, body: string) => fetch(`${crm.url}/_admin/leads/${target}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body });
      expect(await (await patch(id, '{"name": "Edited by hand"}')).json()).toMatchObject({ lead_id: id, name: 'Edited by hand' });
      expect((await patch(id, '{"colour": "red"}')).status).toBe(400);
      expect((await patch('L999', '{"name": "x"}')).status).toBe(404);
      expect((await fetch(`${crm.url}/_admin/leads/${id}`, { method: 'DELETE' })).status).toBe(200);
      expect(await (await fetch(`${crm.url}/_admin/leads`)).json()).toEqual([]);
      expect((await fetch(`${crm.url}/_admin/leads/${id}`, { method: 'PUT' })).status).toBe(405);
    } finally {
      await crm.stop();
    }
  });

  test('--no-fetch --upsert --dedupe shape the routes', async () => {
    const crm = await startMockCrm(['--auth', 'none', '--no-fetch', '--upsert', '--dedupe']);
    try {
      expect(crm.banner).toContain('routes:  POST /crm/create  ·  POST|PUT /crm/update/{lead_id}  ·  POST /crm/upsert');
      expect((await fetch(`${crm.url}/crm/fetch?phone=%2B919876543210`)).status).toBe(404);
      const first = await (await create(crm.url, {})).json() as { lead_id: string };
      const again = await (await create(crm.url, {})).json() as { lead_id: string };
      expect(again.lead_id).toBe(first.lead_id);
    } finally {
      await crm.stop();
    }
  });

  test.each([
    [['--auth', 'digest'], '--auth must be one of auth-key, basic, bearer, body-secret, hmac, none'],
    [['--user', 'u', '--auth', 'bearer'], '--user applies to --auth basic only'],
    [['--auth', 'basic', '--user', 'a:b'], '--user: a user name without ":"'],
    [['--auth', 'none', '--key', 'k'], '--key has no use with --auth none'],
    [['--port', '70000'], '--port must be a port number'],
    [['--header', 'X-Key', '--auth', 'bearer'], '--header applies to --auth auth-key and hmac only'],
    [['extra'], 'unexpected argument "extra"'],
  ])('usage error: %j', async (args, message) => {
    const r = await runCli(['mock-crm', ...args]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(message);
  });

  test('as a process (packages/cli/dist/bin.js, built by `pnpm build`): SIGTERM closes it with exit 0', async () => {
    const bin = join(REPO, 'packages/cli/dist/bin.js');
    if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`pnpm build\` first`);
    const child = spawn(process.execPath, [bin, 'mock-crm', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (c: Buffer) => { err += c; });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        out += c;
        const m = /listening on (\S+)/.exec(out);
        if (m && out.includes('Stop with Ctrl-C.')) resolve(m[1]!);
      });
      exited.then((code) => reject(new Error(`mock-crm exited with ${code} before listening: ${err}`)));
    });
    expect((await fetch(`${url}/_admin/leads`)).status).toBe(200);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toContain('Reference CRM stopped (SIGTERM).');
    expect(err).toBe('');
  });
});
