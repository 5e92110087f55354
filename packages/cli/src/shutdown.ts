const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * Resolves when the process is asked to stop (SIGINT, SIGTERM) or `signal` aborts, naming what stopped it.
 * While waiting, the signals no longer kill the process: the caller closes what it opened, then returns.
 */
export function untilShutdown(signal?: AbortSignal): Promise<string> {
  return new Promise((resolve) => {
    const stop = (why: string) => {
      for (const s of SIGNALS) process.off(s, onSignal);
      signal?.removeEventListener('abort', onAbort);
      resolve(why);
    };
    const onSignal = (s: NodeJS.Signals) => stop(s);
    const onAbort = () => stop('abort');
    if (signal?.aborted) return stop('abort');
    for (const s of SIGNALS) process.once(s, onSignal);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
