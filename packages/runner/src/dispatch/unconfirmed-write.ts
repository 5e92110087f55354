import { requestTimeoutMs, SyncError } from '@crm-sync/core';
import type { TenantSettings } from '../api';
import type { Claim } from '../store/types';

/**
 * Writes whose outcome is unknown, and the settle window after them (see the unconfirmed-write mark in
 * ../store/types.ts). A CRM that is slow rather than down may apply a write long after the runner gave up on its
 * answer; a dead runner's last write may still be on its way. If a newer write succeeds meanwhile, the late one lands
 * last, and only a sync sent after it lands puts the newest state back.
 */

/** The settle window never goes below this: a CRM's own queues and retries outlast a short request timeout. */
const MIN_SETTLE_MS = 3000;

/** How long the CRM may still apply an unconfirmed write: twice the mapping's request timeout, at least 3 s. */
export function settleWindowMs(tenant: TenantSettings): number {
  return Math.max(MIN_SETTLE_MS, 2 * requestTimeoutMs(tenant.mapping));
}

const WRITE_STEPS = new Set(['create', 'update', 'upsert']);
/** The CRM may have received the request: no answer in time, or the connection failed after it was open. */
const UNKNOWN_OUTCOME_CODES = new Set(['ERR_TIMEOUT', 'ERR_NETWORK']);
/** Network errors that mean nothing was sent (no connection was ever made). */
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);

/** True when a failed attempt's write may still be applied by the CRM. */
export function isUnknownWriteOutcome(err: unknown): boolean {
  if (!(err instanceof SyncError) || !UNKNOWN_OUTCOME_CODES.has(err.code) || !WRITE_STEPS.has(err.context.step ?? '')) return false;
  return !NEVER_SENT.has((err.cause as { code?: string } | undefined)?.code ?? '');
}

/**
 * For a successful attempt begun at `startedAt` on a claim with an unconfirmed-write mark: when to sync once more,
 * because the marked write may still land over this one; undefined once the attempt began after the settle window.
 */
export function recheckAt(claim: Claim, startedAt: number, tenant: TenantSettings): number | undefined {
  if (claim.unconfirmedWriteAt === undefined) return undefined;
  const settledAt = claim.unconfirmedWriteAt + settleWindowMs(tenant);
  return startedAt < settledAt ? settledAt : undefined;
}
