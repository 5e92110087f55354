/**
 * Crash soak: a stream of ≥ 10,000 contact events (bursts, repeats, out-of-order, redelivered, ~3 % bad) posted to the
 * daemon — a real child process on a SQLite file — while it is killed with SIGKILL at seeded random moments and
 * started again on the same data directory. The sender keeps the platform's at-least-once duty (a batch without a 202
 * is sent again; an acknowledged one never is). At the end the CRM must hold exactly one lead per contact, equal to
 * its final state. Short mode in CI; `pnpm soak` (SOAK=long) runs 100k events and 100 kills. Needs `pnpm build`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countKinds, planStream, prng, startReferenceCrm, type ReferenceCrm } from '@crm-sync/testkit';
import { CRM_KEY, SEED_MAPPING } from '../daemon.support';
import { AtLeastOnceSender, crmFigures, LONG, recordedAttempts, reportFigures, RestartableDaemon, sendStream, sleep, writeSoakConfig } from './soak-support';

const MODE = LONG
  ? { contacts: 10_000, spanMs: 240_000, kills: 100, timeoutMs: 30 * 60_000 }
  : { contacts: 1_000, spanMs: 25_000, kills: 20, timeoutMs: 180_000 };
const SEED = Number(process.env.SOAK_SEED ?? 20241106);
const SLICE_MS = 100;

let crm: ReferenceCrm;
let dir: string;
let daemon: RestartableDaemon | undefined;

beforeAll(async () => {
  crm = await startReferenceCrm({ auth: { style: 'auth-key', key: CRM_KEY }, seed: SEED });
  dir = mkdtempSync(join(tmpdir(), 'crm-sync-crash-soak-'));
});
afterAll(async () => {
  await daemon?.kill();
  await crm.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Kill moments: seeded, spread over the stream and the first seconds after it, at least 400 ms apart. */
function killSchedule(count: number, spanMs: number, seed: number): number[] {
  const rnd = prng(seed);
  const window = spanMs + 3000;
  const gap = Math.min(400, window / count / 2);
  const times = Array.from({ length: count }, () => 300 + rnd() * (window - 300 - count * gap)).sort((a, b) => a - b);
  return times.map((t, i) => t + i * gap);
}

test(`crash soak: ${MODE.kills} × kill -9 during ${MODE.contacts} contacts' stream → every final state, no duplicate lead`, async () => {
  const started = Date.now();
  const { plan, expected } = planStream({ contacts: MODE.contacts, seed: SEED, spanMs: MODE.spanMs, maxBursts: 4, maxChanges: 7 });
  expect(plan.length).toBeGreaterThanOrEqual(MODE.contacts * 10);
  // Some answers come late, so kills land between "create sent" and "lead id stored", and with syncs in flight.
  crm.addFault({ route: '*', latencyMs: 15, rate: 0.3 });

  daemon = new RestartableDaemon(writeSoakConfig(dir, {
    crmUrl: crm.url, mappingFile: SEED_MAPPING, quiet: '200ms', maxWait: '1s', lease: '1s',
    retry: { base: '50ms', max: '500ms', budget: '10m' }, concurrency: 8,
  }));
  await daemon.start();
  const live = daemon;
  const sender = new AtLeastOnceSender(() => live.client);

  const t0 = Date.now();
  const stream = sendStream(plan, sender, { sliceMs: SLICE_MS });
  const chaos = (async () => {
    for (const at of killSchedule(MODE.kills, MODE.spanMs, SEED)) {
      await sleep(t0 + at - Date.now());
      await live.killAndRestart();
    }
  })();
  await Promise.all([stream, chaos]);
  await sender.drain(60_000);
  const streamedMs = Date.now() - t0;
  const status = await live.client.waitUntilIdle({ timeoutMs: 120_000 });

  const crmSide = crmFigures(crm, expected);
  const kinds = countKinds(plan);
  reportFigures('crash-soak', {
    events: `${plan.length} (${kinds.change} changes, ${kinds.redelivery} redelivered, ${kinds['out-of-order']} out of order, ${kinds.bad} bad)`,
    contacts: expected.size,
    kills: live.kills,
    posts: `${sender.totals.posts} (${sender.totals.unanswered} unanswered; ${sender.totals.resentEvents} events re-sent)`,
    ingest: `${sender.totals.accepted} accepted (${sender.totals.ignored} changed nothing) · ${sender.totals.rejected} rejected`,
    'sync attempts': await recordedAttempts(live.client, expected.keys()),
    'CRM calls': `${crmSide.calls} ${JSON.stringify(crmSide.byRoute)}`,
    'calls per contact': `mean ${crmSide.callsPerContact.mean}, max ${crmSide.callsPerContact.max}`,
    leads: crmSide.leads,
    duplicates: crmSide.check.duplicates,
    'lost (missing)': crmSide.check.missing,
    mismatches: crmSide.check.mismatched,
    'dead letters': status.deadLetters,
    time: `streamed in ${(streamedMs / 1000).toFixed(1)} s, idle ${((Date.now() - t0 - streamedMs) / 1000).toFixed(1)} s later, ${((Date.now() - started) / 1000).toFixed(1)} s in all`,
  });

  expect(live.kills).toBe(MODE.kills);
  expect(sender.totals.rejected).toBe(kinds.bad);
  expect(status.deadLetters).toBe(0);
  expect(crmSide.check.problems.slice(0, 10)).toEqual([]);
  expect(crmSide.check).toMatchObject({ duplicates: 0, missing: 0, mismatched: 0, unexpected: 0 });
}, MODE.timeoutMs);
