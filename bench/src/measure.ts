/**
 * Timing helpers. Contenders run in small interleaved batches (the order alternating), so load from other processes
 * and GC pauses fall on all of them alike; a ratio is the median of the ratios of neighbouring batches.
 */

/** Times one operation; returns the milliseconds it took. */
export type TimedOp = () => Promise<number>;

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Wraps an async function so it reports its own duration. */
export function timed(fn: () => Promise<unknown>): TimedOp {
  return async () => {
    const started = performance.now();
    await fn();
    return performance.now() - started;
  };
}

export interface Batches {
  /** Per contender, the mean milliseconds per operation of each batch. */
  msPerOp: number[][];
}

/** Runs `rounds` rounds; in each, every contender does one batch of `batch` operations. */
export async function interleave(ops: TimedOp[], opts: { rounds: number; batch: number; warmup: number }): Promise<Batches> {
  for (const op of ops) for (let i = 0; i < opts.warmup; i++) await op();
  const msPerOp: number[][] = ops.map(() => []);
  for (let r = 0; r < opts.rounds; r++) {
    const order = r % 2 === 0 ? ops.map((_, i) => i) : ops.map((_, i) => ops.length - 1 - i);
    for (const i of order) {
      let total = 0;
      for (let n = 0; n < opts.batch; n++) total += await ops[i]!();
      msPerOp[i]!.push(total / opts.batch);
    }
  }
  return { msPerOp };
}

/** Operations per second from a contender's batches (median batch). */
export function opsPerSecond(batches: readonly number[]): number {
  return Math.round(1000 / median(batches));
}

/** The median over rounds of a's time per operation divided by b's, in the same round. */
export function medianRatio(a: readonly number[], b: readonly number[]): number {
  return median(a.map((x, i) => x / b[i]!));
}
