/** Generated contact events: valid, distinct Indian mobile numbers, and a payload that changes with `version`. */
export interface EventOptions {
  tenant?: string;
  /** Part of the contact id, so rounds of a benchmark never touch each other's contacts. */
  prefix?: string;
  /** Add an eventId (makes the store de-duplicate redeliveries, one more row per event). */
  eventId?: boolean;
}

export function contactEvent(i: number, version: number, opts: EventOptions = {}): Record<string, unknown> {
  const contactId = `${opts.prefix ?? 'c'}_${i}`;
  return {
    ...(opts.eventId ? { eventId: `${contactId}_v${version}` } : {}),
    tenant: opts.tenant ?? 'acme',
    contactId,
    phone: `+91${9_000_000_000 + i}`,
    email: `contact${i}@example.com`,
    name: `Contact ${i}`,
    tags: ['whatsapp'],
    attributes: { utm_campaign: `campaign_${version}`, city: 'Mumbai', version },
  };
}

/** `count` events for contacts `from`..`from+count-1`, split into batches of `batch`. */
export function eventBatches(from: number, count: number, batch: number, version: number, opts: EventOptions = {}): Array<Record<string, unknown>[]> {
  const out: Array<Record<string, unknown>[]> = [];
  for (let at = 0; at < count; at += batch) {
    out.push(Array.from({ length: Math.min(batch, count - at) }, (_, k) => contactEvent(from + at + k, version, opts)));
  }
  return out;
}
