/** The trailing debounce with a maximum wait, as one pure rule every store backend applies. */
export interface DebounceWindow {
  /** Sync once the contact has been quiet this long. */
  quietMs: number;
  /** Sync at the latest this long after the first pending change. */
  maxWaitMs: number;
}

/** When a pending contact is due: quiet since its last change, or its max wait since the first, whichever comes first. */
export function debounceDueAt(firstChangeAt: number, lastChangeAt: number, window: DebounceWindow): number {
  return Math.min(lastChangeAt + window.quietMs, firstChangeAt + window.maxWaitMs);
}
