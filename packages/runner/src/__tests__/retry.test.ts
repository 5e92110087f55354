import { decideRetry } from '../retry';

const policy = { baseMs: 1000, maxMs: 8000, budgetMs: 60_000 };

describe('decideRetry', () => {
  it('full jitter: a random delay up to base·2^(n-1), capped at maxMs', () => {
    const at = (failures: number, r: number) => decideRetry({ policy, failures, failingSince: 0, now: 0, random: () => r });
    expect(at(1, 1)).toEqual({ retryAt: 1000, delayMs: 1000 });
    expect(at(3, 1)).toEqual({ retryAt: 4000, delayMs: 4000 });
    expect(at(10, 1)).toEqual({ retryAt: 8000, delayMs: 8000 });
    expect(at(3, 0.5)).toEqual({ retryAt: 2000, delayMs: 2000 });
    expect(at(3, 0)).toEqual({ retryAt: 0, delayMs: 0 });
  });

  it('never sooner than Retry-After', () => {
    expect(decideRetry({ policy, failures: 1, failingSince: 0, now: 0, retryAfterMs: 30_000, random: () => 1 })).toEqual({ retryAt: 30_000, delayMs: 30_000 });
  });

  it('dead letter once the next try would land past the budget since the first failure', () => {
    expect(decideRetry({ policy, failures: 9, failingSince: 0, now: 52_000, random: () => 1 })).toEqual({ retryAt: 60_000, delayMs: 8000 });
    expect(decideRetry({ policy, failures: 9, failingSince: 0, now: 52_001, random: () => 1 })).toEqual({ deadLetter: true });
    expect(decideRetry({ policy, failures: 1, failingSince: 0, now: 0, retryAfterMs: 61_000 })).toEqual({ deadLetter: true });
  });
});
