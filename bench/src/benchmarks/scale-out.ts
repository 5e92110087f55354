/**
 * scale-out: end-to-end syncs/s of `crm-sync run` processes against a CRM that answers every request after 50 ms
 * (the reference CRM with a latency fault), each runner at the same fixed concurrency. Two runners sharing one
 * redis-server vs one; and one runner on Redis vs one on SQLite. Each measurement ingests fresh contacts through
 * the runners' HTTP APIs (split evenly, quiet window 0) and times the CRM's own log, from the first request to the
 * last answer; the contenders alternate over several rounds and each ratio is the median of the rounds' ratios.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { RedisServer, startReferenceCrm, type ReferenceCrm } from '@crm-sync/testkit';
import type { Benchmark, Figure } from '../figure';
import { median } from '../measure';

const REPO = join(__dirname, '../../..');
const BIN = join(REPO, 'packages/cli/dist/bin.js');
const MAPPING = join(REPO, 'mappings/seed-contract.yaml');
const CRM_KEY = 'bench-scale-out-key';
const LATENCY_MS = 50;
const CONCURRENCY = 8;
const CONTACTS = 320;
const ROUNDS = 3;

interface RunnerProcess {
  url: string;
  proc: ChildProcess;
}

/** Starts `crm-sync run --config` and resolves with its API URL once it logs that it is listening. */
function startRunner(config: string): Promise<RunnerProcess> {
  const proc = spawn(process.execPath, [BIN, 'run', '--config', config], { env: { ...process.env, SEED_CRM_AUTH_KEY: CRM_KEY }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (line.includes('crm-sync daemon listening')) resolve({ url: (JSON.parse(line) as { url: string }).url, proc });
    });
    proc.once('exit', (code) => reject(new Error(`crm-sync run exited (${code}) before listening: ${stderr}`)));
  });
}

function writeConfig(dir: string, name: string, store: string, crmUrl: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, [
    'listen: 127.0.0.1:0', `store: ${JSON.stringify(store)}`, 'allowHosts: [127.0.0.1]', 'logLevel: info',
    'tenants:', `  acme: { mapping: ${JSON.stringify(MAPPING)}, baseUrl: ${JSON.stringify(crmUrl)}, quiet: 0ms, maxWait: 0ms, concurrency: ${CONCURRENCY} }`,
  ].join('\n'));
  return file;
}

let nextContact = 0;

/** Sends CONTACTS new contacts, split over the runners, and returns syncs/s as the CRM saw them. */
async function measure(crm: ReferenceCrm, runners: RunnerProcess[]): Promise<number> {
  crm.reset();
  crm.addFault({ route: '*', latencyMs: LATENCY_MS });
  const events = Array.from({ length: CONTACTS }, () => {
    const n = nextContact++;
    return { contactId: `s${n}`, phone: `+91${9_100_000_000 + n}`, name: `Contact ${n}`, email: `s${n}@example.com` };
  });
  const share = Math.ceil(CONTACTS / runners.length);
  await Promise.all(runners.map(async (r, i) => {
    const res = await fetch(`${r.url}/v1/tenants/acme/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events.slice(i * share, (i + 1) * share)) });
    if (res.status !== 202) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
  }));
  const deadline = Date.now() + 120_000;
  while (crm.requests().filter((r) => r.route === 'create' && r.status === 200).length < CONTACTS) {
    if (Date.now() > deadline) throw new Error('the runners did not sync every contact within 2 minutes');
    await new Promise((r) => setTimeout(r, 20));
  }
  const log = crm.requests();
  if (log.length !== 2 * CONTACTS) throw new Error(`expected one fetch and one create per contact, the CRM saw ${log.length} requests`);
  const first = Math.min(...log.map((r) => Date.parse(r.at)));
  const last = Math.max(...log.map((r) => Date.parse(r.at) + r.durationMs));
  return (CONTACTS * 1000) / (last - first);
}

export const scaleOut: Benchmark = {
  name: 'scale-out',
  description: `End-to-end syncs/s (new contacts: fetch + create) of crm-sync run processes at concurrency ${CONCURRENCY} each, against a CRM answering after ${LATENCY_MS} ms: two runners sharing one redis-server vs one, and one runner on Redis vs one on SQLite; ${CONTACTS} contacts per measurement, ${ROUNDS} alternating rounds.`,
  async run(): Promise<Figure[]> {
    const dir = mkdtempSync(join(tmpdir(), 'crm-sync-bench-scale-'));
    const redis = await RedisServer.start();
    const crm = await startReferenceCrm({ auth: { style: 'auth-key', key: CRM_KEY } });
    const processes: RunnerProcess[] = [];
    try {
      const start = async (name: string, store: string, n: number) => {
        const config = writeConfig(dir, name, store, crm.url);
        const started = await Promise.all(Array.from({ length: n }, () => startRunner(config)));
        processes.push(...started);
        return started;
      };
      const contenders = {
        redisOne: await start('redis-one', redis.url(1), 1),
        redisTwo: await start('redis-two', redis.url(2), 2),
        sqliteOne: await start('sqlite-one', `sqlite:${join(dir, 'one.db')}`, 1),
      };
      const rates: Record<keyof typeof contenders, number[]> = { redisOne: [], redisTwo: [], sqliteOne: [] };
      const names = Object.keys(contenders) as Array<keyof typeof contenders>;
      for (let round = 0; round < ROUNDS; round++) {
        for (const name of round % 2 === 0 ? names : [...names].reverse()) rates[name].push(await measure(crm, contenders[name]));
      }
      const ratio = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]!));
      const twoOverOne = ratio(rates.redisTwo, rates.redisOne);
      const redisOverSqlite = ratio(rates.redisOne, rates.sqliteOne);
      const round1 = (x: number) => Math.round(x * 10) / 10;
      return [
        { name: '2 runners ÷ 1 runner on one Redis, syncs/s', value: Math.round(twoOverOne * 100) / 100, unit: '×', target: '≥ 1.8', met: twoOverOne >= 1.8 },
        { name: 'Redis ÷ SQLite backend, one runner, syncs/s', value: Math.round(redisOverSqlite * 100) / 100, unit: '×', note: 'the CRM\'s latency dominates both' },
        { name: '1 runner on Redis', value: round1(median(rates.redisOne)), unit: 'syncs/s' },
        { name: '2 runners on Redis', value: round1(median(rates.redisTwo)), unit: 'syncs/s' },
        { name: '1 runner on SQLite', value: round1(median(rates.sqliteOne)), unit: 'syncs/s' },
      ];
    } finally {
      for (const p of processes) p.proc.kill('SIGKILL');
      await crm.close();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
