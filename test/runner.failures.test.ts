import { event, RunnerHarness, seedContract, sleep, waitFor } from './runner.fixtures';

let h: RunnerHarness;
afterEach(async () => { await h?.close(); });

describe('Runner against the reference CRM: failures', () => {
  it('5xx then success: retried with backoff, one lead', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 50 } });
    h.crm.addFault({ route: 'create', status: 503, times: 2 });
    h.runner.start();
    await h.runner.ingest([event('c1')]);
    await h.runner.whenIdle();
    expect(h.routes()).toEqual(['fetch', 'create', 'fetch', 'create', 'fetch', 'create']);
    expect(h.crm.leads()).toHaveLength(1);
    const status = await h.runner.contact('acme', 'c1');
    expect(status).toMatchObject({ state: 'synced', leadId: 'L000001', attempts: 3 });
    expect(status?.history.map((a) => a.outcome)).toEqual(['created', 'failed', 'failed']);
    expect(status?.history[1].error).toMatchObject({ code: 'ERR_CRM_UNAVAILABLE', retryable: true, status: 503, step: 'create', reason: 'injected' });
    const retries = h.hookLog.of('onRetry');
    expect(retries).toHaveLength(2);
    for (const r of retries) expect(r.delayMs).toBeLessThanOrEqual(200); // full jitter, capped at maxMs
  });

  it('429 with Retry-After: the whole tenant waits, not just the contact', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 50, concurrency: 1 } });
    h.crm.addFault({ route: 'fetch', status: 429, retryAfterSec: 1, times: 1 });
    h.runner.start();
    await h.runner.ingest([event('c1')]);
    await sleep(20);
    await h.runner.ingest([event('c2', { phone: '+14155550100' })]);
    await h.runner.whenIdle();
    const requests = h.crm.requests();
    const limited = requests.find((r) => r.status === 429)!;
    const after = requests.filter((r) => r.seq > limited.seq);
    expect(after.length).toBeGreaterThan(0);
    // No request for any contact of the tenant went out within the Retry-After.
    for (const r of after) expect(Date.parse(r.at) - Date.parse(limited.at)).toBeGreaterThanOrEqual(950);
    expect(h.hookLog.of('onRateLimited')).toEqual([{ tenant: 'acme', pauseMs: 1000 }]);
    expect(h.hookLog.of('onRetry')[0]).toMatchObject({ delayMs: expect.any(Number), error: { code: 'ERR_RATE_LIMITED', status: 429 } });
    expect(h.hookLog.of('onRetry')[0].delayMs).toBeGreaterThanOrEqual(1000);
    expect(h.crm.leads()).toHaveLength(2);
  });

  it('attempts in flight that meet the same 429 are one pause: the hook hears each by how much it lengthens the pause', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 30, concurrency: 4 } });
    h.crm.addFault({ route: 'fetch', status: 429, retryAfterSec: 1, times: 4 });
    h.runner.start();
    const started = Date.now();
    await h.runner.ingest(Array.from({ length: 4 }, (_, i) => event(`c${i}`, { phone: `+1415555011${i}` })));
    await waitFor('four retries', () => h.hookLog.of('onRetry').length === 4);
    const wall = Date.now() - started;
    const pauses = h.hookLog.of('onRateLimited') as Array<{ pauseMs: number }>;
    const total = pauses.reduce((sum, p) => sum + p.pauseMs, 0);
    expect(pauses[0]!.pauseMs).toBe(1000);
    // Not 4 × 1000: the later 429s came while the first pause was in force.
    expect(total).toBeGreaterThanOrEqual(1000);
    expect(total).toBeLessThan(1000 + wall);
    await h.runner.whenIdle();
    expect(h.crm.leads()).toHaveLength(4);
  });

  it('requests-per-second limit paces every one of the tenant\'s calls', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 20, requestsPerSecond: 20, concurrency: 2 } });
    h.runner.start();
    await h.runner.ingest(Array.from({ length: 10 }, (_, i) => event(`c${i}`, { phone: `+1415555010${i}` })));
    await h.runner.whenIdle();
    const requests = h.crm.requests();
    expect(requests).toHaveLength(20);
    // Each request (fetch and create alike) takes a token as it leaves: one every 50 ms. Unlimited, the whole run
    // takes ~50 ms. Checked over every 4 intervals (200 ms paced): a request sent late (a busy event loop) does not
    // move the schedule, so the one after it follows it closer than 50 ms, and only a window bounds that. That the
    // bucket holds no burst is token-bucket.test.ts's to check, on a clock of its own.
    const times = requests.map((r) => Date.parse(r.at));
    expect(times.at(-1)! - times[0]).toBeGreaterThanOrEqual(900);
    for (let i = 4; i < times.length; i++) expect(times[i] - times[i - 4]).toBeGreaterThanOrEqual(140);
  });

  it('permanent 4xx → dead letter at once with the reason; replay syncs it', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 50 } });
    h.crm.addFault({ route: 'create', status: 400, times: 1 });
    h.runner.start();
    await h.runner.ingest([event('c1')]);
    await h.runner.whenIdle();
    expect(h.routes()).toEqual(['fetch', 'create']);
    expect(await h.runner.status()).toEqual({ pending: 0, inFlight: 0, retrying: 0, deadLetters: 1, leads: 0 });
    const dead = await h.runner.deadLetters('acme');
    expect(dead).toEqual([{
      tenant: 'acme', contactId: 'c1', at: expect.any(String), attempts: 1, cause: 'permanent',
      error: { code: 'ERR_CRM_REJECTED', message: 'the CRM answered 400', retryable: false, status: 400, step: 'create', reason: 'injected' },
    }]);
    expect(h.hookLog.of('onDeadLetter')).toEqual([expect.objectContaining({ tenant: 'acme', contactId: 'c1', cause: 'permanent' })]);

    expect(await h.runner.replay('acme', 'c1')).toBe(1);
    await h.runner.whenIdle();
    expect(await h.runner.deadLetters()).toEqual([]);
    expect(h.crm.leads()).toEqual([expect.objectContaining({ email: 'c1@example.com' })]);
  });

  it('a new change of a dead-lettered contact tries again', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 50 } });
    h.crm.addFault({ route: 'fetch', status: 401, times: 1 });
    h.runner.start();
    await h.runner.ingest([event('c1')]);
    await h.runner.whenIdle();
    expect((await h.runner.deadLetters())[0].error.code).toBe('ERR_CRM_AUTH');
    await h.runner.ingest([event('c1', { name: 'Changed' })]);
    await h.runner.whenIdle();
    expect(await h.runner.status()).toMatchObject({ deadLetters: 0, leads: 1 });
    expect(h.crm.leads()).toEqual([expect.objectContaining({ name: 'Changed' })]);
  });

  it('retryable failures past the budget → dead letter (retries exhausted)', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 20 }, runner: { retry: { baseMs: 40, maxMs: 40, budgetMs: 150 }, random: () => 1 } });
    h.crm.addFault({ route: 'fetch', status: 502 });
    h.runner.start();
    await h.runner.ingest([event('c1')]);
    await h.runner.whenIdle();
    const [dead] = await h.runner.deadLetters();
    expect(dead).toMatchObject({ contactId: 'c1', cause: 'retries-exhausted', error: { code: 'ERR_CRM_UNAVAILABLE', status: 502 } });
    // 40 ms apart within a 150 ms budget: at most the first try and three retries (exact timing: runner.debounce.test.ts).
    expect(dead.attempts).toBeGreaterThanOrEqual(2);
    expect(dead.attempts).toBeLessThanOrEqual(4);
    expect(h.routes()).toEqual(Array(dead.attempts).fill('fetch'));
  });

  it('the lost answer: create committed but the connection reset → the retry finds the lead, no duplicate', async () => {
    // A 1 s request timeout, so a 3 s settle window (twice it, at least 3 s).
    h = await RunnerHarness.start({ tenant: { quietMs: 50, mapping: seedContract(1000) } });
    h.crm.addFault({ route: 'create', resetAfterCommit: true, times: 1 });
    h.runner.start();
    await h.runner.ingest([event('c1', { name: 'Priya' })]);
    await h.runner.whenIdle();
    // The lost answer left a create whose outcome was unknown, and the person's phone held until that hold lapses
    // (about the settle window after the attempt began): the retry is deferred until then, and its fetch finds the
    // lead. An update begun inside the settle window is sent once more when it ends (one update or two, by a few ms).
    expect(['fetch,create,fetch,update', 'fetch,create,fetch,update,update']).toContain(h.routes().join(','));
    expect(h.hookLog.of('onDeferred').length).toBeGreaterThan(0);
    expect(h.crm.leads()).toEqual([expect.objectContaining({ lead_id: 'L000001', name: 'Priya' })]);
    const status = await h.runner.contact('acme', 'c1');
    expect(status).toMatchObject({ leadId: 'L000001', state: 'synced' });
    const outcomes = status!.history.map((a) => [a.outcome, a.error?.code]);
    expect(outcomes.at(-1)).toEqual(['failed', 'ERR_NETWORK']);
    expect(outcomes.slice(0, -1).every(([outcome]) => outcome === 'updated')).toBe(true);
    // The last update (the one that settled the contact) began once the settle window after the lost create had passed.
    expect(Date.parse(status!.history[0]!.at) - Date.parse(status!.history.at(-1)!.at)).toBeGreaterThanOrEqual(3000);
  });
});

describe('Runner against the reference CRM: a write whose outcome is unknown, then a change', () => {
  /** Waits until the contact's last attempt failed (the lost answer), so the next change is synced after it. */
  // From the hooks, not the contact's last outcome: a retry that succeeds within a poll's interval (full jitter can
  // make it a few ms) would hide the failure from a poll.
  const failedOnce = (id: string) => waitFor(`${id}'s failed attempt`, () => h.hookLog.of('onSync').some((e) => e.contactId === id && e.outcome === 'failed'));

  it('a lost create, then a corrected phone: the retry finds the lead under the phone the create sent, and updates it (one lead)', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 50, mapping: seedContract(300) } });
    h.crm.addFault({ route: 'create', resetAfterCommit: true, times: 1 });
    h.runner.start();
    await h.runner.ingest([event('c1', { phone: '+91 98111 11111', email: undefined })]);
    await failedOnce('c1');
    await h.runner.ingest([event('c1', { phone: '+91 98222 22222', email: undefined, name: 'Priya S' })]);
    await h.runner.whenIdle();
    expect(h.crm.leads()).toEqual([expect.objectContaining({ lead_id: 'L000001', phone: '+919822222222', name: 'Priya S' })]);
    // Nothing under the new phone; then the old phone's search finds the lead the lost create made (the last update is
    // the one more sync after the settle window: the lost create was a write whose outcome was unknown).
    expect(h.crm.requests().map((r) => [r.route, r.status])).toEqual([['fetch', 404], ['create', 0], ['fetch', 404], ['fetch', 200], ['update', 200], ['update', 200]]);
    expect(await h.runner.contact('acme', 'c1')).toMatchObject({ state: 'synced', leadId: 'L000001', lastOutcome: 'updated' });
  });

  it('a lost create, then an attribute removed: the field the lost create set is cleared', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 50, mapping: seedContract(300) } });
    h.crm.addFault({ route: 'create', resetAfterCommit: true, times: 1 });
    h.runner.start();
    await h.runner.ingest([event('c1', { attributes: { city: 'Mumbai', utm_campaign: 'diwali' } })]);
    await failedOnce('c1');
    await h.runner.ingest([event('c1', { attributes: { city: 'Pune' } })]);
    await h.runner.whenIdle();
    expect(h.crm.leads()).toEqual([expect.objectContaining({ lead_id: 'L000001', custom_fields: { city: 'Pune' } })]);
  });

  it('an update that timed out (and landed late), then an attribute removed: the field it set is cleared', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 50, mapping: seedContract(300) } });
    h.runner.start();
    await h.runner.ingest([event('c1', { attributes: { city: 'Mumbai' } })]);
    await h.runner.whenIdle();
    // The update adding utm_campaign is answered after the timeout, and lands.
    h.crm.addFault({ route: 'update', latencyMs: 600, times: 1 });
    await h.runner.ingest([event('c1', { attributes: { city: 'Mumbai', utm_campaign: 'diwali' } })]);
    await failedOnce('c1');
    await h.runner.ingest([event('c1', { attributes: { city: 'Pune' } })]);
    await h.runner.whenIdle();
    expect(h.crm.leads()).toEqual([expect.objectContaining({ custom_fields: { city: 'Pune' } })]);
    const status = await h.runner.contact('acme', 'c1');
    const timedOut = status?.history.find((a) => a.error?.code === 'ERR_TIMEOUT');
    // The failed call's duration is how long it took to fail: the whole timeout.
    expect(timedOut?.calls.at(-1)).toMatchObject({ step: 'update', durationMs: expect.any(Number) });
    expect(timedOut!.calls.at(-1)!.durationMs).toBeGreaterThanOrEqual(290);
  });
});
