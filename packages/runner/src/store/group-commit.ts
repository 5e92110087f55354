/**
 * Group commit: calls that arrive together (the same event-loop turn, e.g. concurrent ingest requests) are written in
 * one transaction, so one fsync serves them all. Each caller's promise settles only after that transaction commits
 * (or fails, with the whole batch).
 */
export class GroupCommit<I, O> {
  private queue: Array<{ items: readonly I[]; resolve: (o: O[]) => void; reject: (e: unknown) => void }> = [];
  private queued = 0;
  private scheduled = false;

  /** `commit` writes a batch in one transaction and returns one output per item, in order. */
  constructor(private readonly commit: (items: I[]) => O[], private readonly maxBatch = 5000) {}

  submit(items: readonly I[]): Promise<O[]> {
    if (items.length === 0) return Promise.resolve([]);
    return new Promise<O[]>((resolve, reject) => {
      this.queue.push({ items, resolve, reject });
      this.queued += items.length;
      if (this.queued >= this.maxBatch) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Writes everything queued now. */
  flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    this.queued = 0;
    let outputs: O[];
    try {
      outputs = this.commit(batch.flatMap((b) => b.items));
    } catch (err) {
      for (const b of batch) b.reject(err);
      return;
    }
    let at = 0;
    for (const b of batch) {
      b.resolve(outputs.slice(at, at + b.items.length));
      at += b.items.length;
    }
  }
}
