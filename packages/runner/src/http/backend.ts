import type { IngestOptions } from '../runner';
import type { ContactStatus, DeadLetter, IngestResult, StatusCounts } from '../api';

type MaybePromise<T> = T | Promise<T>;

/** What the HTTP API needs from the runner (class Runner implements it). */
export interface ApiBackend {
  ingest(events: unknown[], opts?: IngestOptions): Promise<IngestResult>;
  status(): MaybePromise<StatusCounts>;
  contact(tenant: string, contactId: string): MaybePromise<ContactStatus | undefined>;
  deadLetters(tenant?: string): MaybePromise<DeadLetter[]>;
  /** Resolves to the number of contacts scheduled again. */
  replay(tenant: string, contactId: string | 'all'): MaybePromise<number>;
  /** Resolves to the number of contacts marked to be sent again. */
  resync(tenant: string, contactIds: readonly string[] | 'all', opts?: { perSecond?: number }): MaybePromise<number>;
}
