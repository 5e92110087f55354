/** Runs `jobs` with `concurrency` workers, each taking the next job when its last one settles. */
export async function runConcurrently<T>(jobs: readonly T[], concurrency: number, work: (job: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) await work(jobs[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
}

/** Resolves once `count` calls of the returned `tick` have happened. */
export function countdown(count: number): { tick: () => void; done: Promise<void> } {
  let left = count;
  let resolve!: () => void;
  const done = new Promise<void>((r) => { resolve = r; });
  if (left <= 0) resolve();
  return { tick: () => { if (--left === 0) resolve(); }, done };
}
