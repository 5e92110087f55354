/**
 * Debounce and backoff timing on a manual clock: minutes of windows in milliseconds of test, exact to the
 * millisecond. The CRM calls themselves are real HTTP; waitFor covers their (real) round trip.
 */
import { ManualClock } from '@crm-sync/runner';
import { event, RunnerHarness, sleep, waitFor } from './runner.fixtures';

const MIN = 60_000;
let h: RunnerHarness;
let clock: ManualClock;
afterEach(async () => { await h?.close(); });

async function start(tenant: { quietMs: number; maxWaitMs: number }, retry = { baseMs: 10_000, maxMs: 60 * MIN, budgetMs: 24 * 60 * MIN }) {
  clock = new ManualClock();
  h = await RunnerHarness.start({ tenant, runner: { clock, retry, random: () => 1 } });
  h.runner.start();
}

/** Moves the clock and gives any sync it started time to reach the CRM (real time), then counts requests. */
async function advance(ms: number): Promise<number> {
  await clock.advance(ms);
  await sleep(30);
  return h.crm.requests().length;
}

describe('debounce timing (manual clock)', () => {
  it('syncs exactly one quiet window after the last change of a burst', async () => {
    await start({ quietMs: 5 * MIN, maxWaitMs: 60 * MIN });
    await h.runner.ingest([event('c1', { name: 'A' })]);
    await clock.advance(2 * MIN);
    await h.runner.ingest([event('c1', { name: 'B' })]);
    await clock.advance(4 * MIN);
    await h.runner.ingest([event('c1', { name: 'C' })]);
    expect(await advance(5 * MIN - 1)).toBe(0);
    await clock.advance(1);
    await waitFor('the sync', () => h.crm.leads().length === 1);
    expect(h.crm.leads()[0].name).toBe('C');
    await h.runner.whenIdle();
    expect(h.routes()).toEqual(['fetch', 'create']);
  });

  it('max wait: a contact changing every 4 minutes (quiet 5) is synced 60 minutes after its first change', async () => {
    await start({ quietMs: 5 * MIN, maxWaitMs: 60 * MIN });
    const first = clock.now();
    for (let minute = 0; minute <= 56; minute += 4) {
      await clock.advance(first + minute * MIN - clock.now());
      await h.runner.ingest([event('c1', { name: `at ${minute} min` })]);
    }
    expect(await advance(first + 60 * MIN - 1 - clock.now())).toBe(0);
    await clock.advance(1);
    await waitFor('the max-wait sync', () => h.crm.leads().length === 1);
    expect(h.crm.leads()[0].name).toBe('at 56 min');
  });

  it('backs off exponentially (full jitter, here at its ceiling) and honours Retry-After', async () => {
    await start({ quietMs: MIN, maxWaitMs: 10 * MIN });
    h.crm.addFault({ route: 'fetch', status: 503, times: 2 });
    h.crm.addFault({ route: 'fetch', status: 429, retryAfterSec: 120, times: 1 });
    await h.runner.ingest([event('c1')]);
    expect(await advance(MIN)).toBe(1); // first try: 503
    expect(await advance(10_000 - 1)).toBe(1); // retry 1 after baseMs (random() = 1: the top of the jitter range)
    expect(await advance(1)).toBe(2); // 503 again
    expect(await advance(20_000 - 1)).toBe(2); // retry 2 after 2·baseMs
    expect(await advance(1)).toBe(3); // 429, Retry-After 120 s (longer than the 40 s backoff)
    expect(await advance(120_000 - 1)).toBe(3);
    await clock.advance(1);
    await waitFor('the sync', () => h.crm.leads().length === 1);
    expect(h.hookLog.of('onRetry').map((r) => r.delayMs)).toEqual([10_000, 20_000, 120_000]);
  });

  it('retryable failures go to the dead letters once the next retry would pass the budget', async () => {
    await start({ quietMs: MIN, maxWaitMs: 10 * MIN }, { baseMs: 10_000, maxMs: 20_000, budgetMs: 45_000 });
    h.crm.addFault({ route: 'fetch', status: 502 });
    await h.runner.ingest([event('c1')]);
    expect(await advance(MIN)).toBe(1); // fails at 0 s
    expect(await advance(10_000)).toBe(2); // retry at 10 s
    expect(await advance(20_000)).toBe(3); // retry at 30 s; the next would be at 50 s, past the 45 s budget
    expect(await advance(60_000)).toBe(3);
    expect(await h.runner.deadLetters()).toEqual([expect.objectContaining({ contactId: 'c1', attempts: 3, cause: 'retries-exhausted' })]);
    expect(h.hookLog.of('onRetry').map((r) => r.delayMs)).toEqual([10_000, 20_000]);
  });
});
