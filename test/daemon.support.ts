/**
 * Shared set-up for the daemon tests: a reference CRM, a temp data dir, and a daemon config pointing the
 * seed-contract mapping at that CRM with short windows.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLogger, resolveConfig, startDaemon, type Daemon, type DaemonConfig, type Logger } from '@crm-sync/runner';
import { startReferenceCrm, type ReferenceCrm } from '@crm-sync/testkit';
import { SEED_MAPPING, seedMappingText } from './seed-mapping';

export const REPO = resolve(__dirname, '..');
export { SEED_MAPPING };
export const CRM_KEY = 'daemon-test-key';
export const TENANT = 'acme';

/** The seed-contract mapping reads its key from here. */
process.env.SEED_CRM_AUTH_KEY = CRM_KEY;

export const silentLogger = (): Logger => createLogger({ level: 'silent' });

export interface TestEnv {
  crm: ReferenceCrm;
  dataDir: string;
  /** A config for tenant `acme` (quiet 150ms, max wait 1s, retries from 50ms) on a free port; `extra` adds/overrides top-level settings. */
  config(extra?: Record<string, unknown>, tenant?: Record<string, unknown>): DaemonConfig;
  cleanup(): Promise<void>;
}

export async function testEnv(): Promise<TestEnv> {
  const crm = await startReferenceCrm({ auth: { style: 'auth-key', key: CRM_KEY } });
  const dataDir = mkdtempSync(join(tmpdir(), 'crm-sync-daemon-'));
  return {
    crm,
    dataDir,
    config: (extra = {}, tenant = {}) => resolveConfig({
      listen: '127.0.0.1:0',
      dataDir,
      allowHosts: ['127.0.0.1'],
      drain: '2s',
      retry: { base: '50ms', max: '200ms', budget: '10s' },
      ...extra,
      tenants: { [TENANT]: { mapping: SEED_MAPPING, baseUrl: crm.url, quiet: '150ms', maxWait: '1s', ...tenant } },
    }, { name: 'test config', baseDir: REPO, labels: {} }, {}),
    async cleanup() {
      await crm.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The fixture every in-process daemon test file shares: a fresh TestEnv before each test; after it, the daemon the
 * test started through `start` is stopped and the env cleaned up.
 */
export function useDaemonEnv(): { readonly env: TestEnv; start(config: DaemonConfig, logger?: Logger): Promise<Daemon> } {
  let env: TestEnv | undefined;
  let daemon: Daemon | undefined;
  beforeEach(async () => { env = await testEnv(); });
  afterEach(async () => {
    await daemon?.stop();
    daemon = undefined;
    await env?.cleanup();
  });
  return {
    get env() { return env!; },
    async start(config, logger = silentLogger()) {
      daemon = await startDaemon(config, { logger });
      return daemon;
    },
  };
}

export async function post(url: string, body: string | unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
}

export async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { status: res.status, body: text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
}

/** A valid contact event; `n` makes phone, email and contactId distinct. */
export function event(n: number, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    eventId: `e${n}-${Math.random().toString(36).slice(2, 8)}`,
    contactId: `c${n}`,
    phone: `+9198765${String(43000 + n).padStart(5, '0')}`,
    name: `Contact ${n}`,
    email: `contact${n}@example.com`,
    attributes: { city: 'Mumbai' },
    ...over,
  };
}

export const BIN = join(REPO, 'packages/cli/dist/bin.js');

export interface ChildDaemon {
  url: string;
  proc: ChildProcess;
  /** Every stdout line so far (JSON log lines). */
  stdout: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `crm-sync run …` as a child process (needs `pnpm build`) and resolves once it logs that it is listening. */
export function spawnDaemon(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ChildDaemon> {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run pnpm build first`);
  const proc = spawn(process.execPath, [BIN, 'run', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  let stderr = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`the daemon did not start: ${stderr}`)); }, 15_000);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      stdout.push(line);
      const url = line.includes('crm-sync daemon listening') ? (JSON.parse(line) as { url: string }).url : undefined;
      if (url) { clearTimeout(timer); resolve({ url, proc, stdout, exited }); }
    });
    proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    void exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`the daemon exited (${code}) before listening: ${stderr}`)); });
  });
}

/** The seed mapping with another request timeout (see seedMappingText), written into `dir`. */
export function seedMappingWithTimeout(dir: string, timeoutMs: number): string {
  const file = join(dir, `seed-${timeoutMs}ms.yaml`);
  writeFileSync(file, seedMappingText(timeoutMs));
  return file;
}

/** Writes a crm-sync.yaml for tenant `acme` on the reference CRM, with short windows, lease and retries. */
export function writeConfig(dir: string, crmUrl: string, extra: string[] = [], mappingFile = SEED_MAPPING): string {
  const file = join(dir, 'crm-sync.yaml');
  writeFileSync(file, [
    'listen: 127.0.0.1:0',
    'dataDir: ./data',
    'allowHosts: [127.0.0.1]',
    'lease: 1s',
    'drain: 5s',
    'retry: { base: 100ms, max: 500ms, budget: 1m }',
    ...extra,
    'tenants:',
    `  ${TENANT}: { mapping: ${JSON.stringify(mappingFile)}, baseUrl: ${JSON.stringify(crmUrl)}, quiet: 100ms, maxWait: 1s }`,
  ].join('\n'));
  return file;
}
