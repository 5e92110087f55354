import { ManualClock } from '../clock';
import { localRateLimits } from '../dispatch/rate-limit';
import { TenantPacer } from '../dispatch/request-pacer';

/** A pacer over a process-local budget; `sent` records when each request was let go, `pauses` the quota pauses. */
function pacer(requestsPerSecond: number | undefined) {
  const clock = new ManualClock(0);
  const pauses: number[] = [];
  const p = new TenantPacer(localRateLimits('acme', requestsPerSecond, 0), clock, (ms, paused) => { pauses.push(ms); void paused; });
  const sent: number[] = [];
  const send = () => p.beforeRequest().then(() => { sent.push(clock.now()); });
  return { clock, p, sent, send, pauses };
}

describe('TenantPacer', () => {
  it('lets requests go one at a time at the declared rate, never in a burst', async () => {
    const { clock, sent, send } = pacer(40);
    const all = Promise.all(Array.from({ length: 5 }, send));
    await clock.advance(200);
    await all;
    expect(sent).toEqual([0, 25, 50, 75, 100]);
  });

  it('sends no more than the quota the CRM reported, less the requests in flight, until the reset', async () => {
    const { clock, p, sent, send, pauses } = pacer(undefined);
    await Promise.all([send(), send(), send()]); // three in flight
    p.afterResponse({ remaining: 4, resetMs: 500 }); // two still in flight may count: 2 left
    const next = Promise.all(Array.from({ length: 4 }, send));
    await clock.advance(10);
    expect(sent).toEqual([0, 0, 0, 0, 0]);
    p.afterResponse({ remaining: 9, resetMs: 490 }); // an older answer, overtaken: it does not raise what is left
    await clock.advance(100);
    expect(sent).toHaveLength(5);
    await clock.advance(400);
    await next;
    expect(sent.slice(5)).toEqual([500, 500]);
    expect(pauses).toEqual([]);
  });

  it('pauses the tenant when nothing is left, and an unanswered request frees its place', async () => {
    const { clock, p, sent, send, pauses } = pacer(undefined);
    await Promise.all([send(), send()]);
    p.afterResponse(undefined); // failed without an answer
    p.afterResponse({ remaining: 0, resetMs: 300 });
    expect(pauses).toEqual([300]);
    const later = send();
    await clock.advance(299);
    expect(sent).toHaveLength(2);
    await clock.advance(1);
    await later;
    expect(sent).toEqual([0, 0, 300]);
  });
});
