/**
 * A bursty contact stream on a timeline: every contact changes in `bursts` bursts of `eventsPerBurst` full snapshots
 * `spacingMs` apart, bursts `gapMs` apart, contacts staggered over `staggerMs`. With spacing well inside the quiet
 * window and gaps well outside it, each burst is exactly one quiet period per contact.
 */
import { contactEvent } from './events';

export interface BurstyStreamOptions {
  contacts: number;
  bursts: number;
  eventsPerBurst: number;
  spacingMs: number;
  gapMs: number;
  staggerMs: number;
}

export interface TimedEvent {
  atMs: number;
  event: Record<string, unknown>;
}

export function burstyStream(o: BurstyStreamOptions): TimedEvent[] {
  const out: TimedEvent[] = [];
  for (let c = 0; c < o.contacts; c++) {
    const offset = Math.round((c * o.staggerMs) / o.contacts);
    let version = 0;
    for (let b = 0; b < o.bursts; b++) {
      for (let e = 0; e < o.eventsPerBurst; e++) {
        out.push({ atMs: offset + b * o.gapMs + e * o.spacingMs, event: contactEvent(c, ++version, { prefix: 'burst', eventId: true }) });
      }
    }
  }
  return out.sort((a, b) => a.atMs - b.atMs);
}

/** Sends each event at its time (those due together in one batch), in real time from now. */
export async function replay(stream: readonly TimedEvent[], send: (events: Array<Record<string, unknown>>) => Promise<unknown>, tickMs = 5): Promise<void> {
  const started = performance.now();
  let at = 0;
  while (at < stream.length) {
    const now = performance.now() - started;
    const due: Array<Record<string, unknown>> = [];
    while (at < stream.length && stream[at]!.atMs <= now) due.push(stream[at++]!.event);
    if (due.length > 0) await send(due);
    if (at < stream.length) await new Promise((r) => setTimeout(r, Math.min(tickMs, Math.max(0, stream[at]!.atMs - (performance.now() - started)))));
  }
}
