import { prng } from '../prng';

/** Why an event is in the stream. */
export type PlannedKind = 'change' | 'redelivery' | 'out-of-order' | 'bad';

export interface PlannedEvent {
  /** When to send it, ms after the stream starts. */
  at: number;
  /** A contact event as the messaging platform sends it (CONTRACT.md), without `tenant` (the only tenant). */
  event: Record<string, unknown>;
  kind: PlannedKind;
}

/** A contact's final state as the CRM should hold it once everything is synced (the phone already in E.164). */
export interface ContactState {
  contactId: string;
  phone: string;
  name: string;
  email: string;
  attributes: Record<string, string>;
}

export interface ContactStream {
  /** In send order (by `at`). */
  plan: PlannedEvent[];
  /** By contactId. */
  expected: Map<string, ContactState>;
}

export interface StreamOptions {
  contacts: number;
  seed: number;
  /** The plan's `at` times spread over this many ms. Default 3000. */
  spanMs?: number;
  /** Each contact changes in 1..maxBursts bursts. Default 3. */
  maxBursts?: number;
  /** Each burst holds 1..maxChanges changes, 20–140 ms apart. Default 4. */
  maxChanges?: number;
}

/** Phones are 98765 plus five digits from the contact's index: distinct for this many contacts. */
export const MAX_STREAM_CONTACTS = 100_000;

const FIRST = ['Priya', 'Arjun', 'Meera', 'Kabir', 'Ananya', 'Rohan', 'Isha', 'Vikram', 'Sara', 'Dev'];
const LAST = ['Sharma', 'Iyer', 'Khan', 'Patel', 'Das', 'Reddy', 'Gupta', 'Nair'];
const CITIES = ['Mumbai', 'Pune', 'Delhi', 'Chennai', 'Kolkata', 'Jaipur'];
const STAGES = ['new', 'contacted', 'qualified', 'won'];
const CAMPAIGNS = ['diwali_2024', 'summer_sale', 'referral', 'organic'];
/** Each makes an event that validation must refuse whole. */
const BAD: Array<(e: Record<string, unknown>) => Record<string, unknown>> = [
  ({ phone: _p, ...rest }) => rest,
  (e) => ({ ...e, phone: 'call me maybe' }),
  (e) => ({ ...e, email: 'not-an-email' }),
  (e) => ({ ...e, attributes: null }),
  (e) => ({ ...e, tenant: 'nobody' }),
];

/**
 * A seeded stream of contact changes as a messaging platform sends them: each contact changes in bursts (several
 * changes closer together than a quiet window), about 6 % of changes are delivered twice, 5 % are followed by an
 * out-of-order event (sent later, stamped earlier: it must change nothing) and 3 % by an invalid one. Phones come in
 * the platform's spellings. Returns the plan in send order and each contact's expected final state: the newest
 * change, whatever order the events arrive in, as long as every valid event is eventually accepted.
 */
export function planStream(opts: StreamOptions): ContactStream {
  const { contacts, seed, spanMs = 3000, maxBursts = 3, maxChanges = 4 } = opts;
  if (!Number.isInteger(contacts) || contacts < 1 || contacts > MAX_STREAM_CONTACTS) {
    throw new RangeError(`contacts must be a whole number 1..${MAX_STREAM_CONTACTS}, got ${contacts}`);
  }
  const rnd = prng(seed);
  const pick = <T>(list: readonly T[]) => list[Math.floor(rnd() * list.length)]!;
  const base = Date.now() - 3_600_000;
  const plan: PlannedEvent[] = [];
  const expected = new Map<string, ContactState>();
  let eventNo = 0;
  for (let i = 0; i < contacts; i++) {
    const contactId = `contact-${String(i + 1).padStart(4, '0')}`;
    const first = pick(FIRST);
    const last = pick(LAST);
    // The platform's own spellings: the daemon normalizes them all to +9198765xxxxx.
    const digits = `98765${String(10000 + i).slice(-5)}`;
    const phone = [`+91${digits}`, `91${digits}`, `+91 ${digits.slice(0, 5)} ${digits.slice(5)}`, `+91-${digits.slice(0, 3)}-${digits.slice(3, 6)}-${digits.slice(6)}`][i % 4]!;
    const state: ContactState = {
      contactId, phone: `+91${digits}`, name: `${first} ${last}`, email: `${first}.${last}.${i + 1}@example.com`.toLowerCase(),
      attributes: { city: pick(CITIES), stage: 'new', utm_campaign: pick(CAMPAIGNS) },
    };
    let ts = base + i * 1000;
    const bursts = 1 + Math.floor(rnd() * maxBursts);
    for (let b = 0; b < bursts; b++) {
      let at = Math.floor((b / bursts) * spanMs + rnd() * (spanMs / bursts) * 0.5);
      const changes = 1 + Math.floor(rnd() * maxChanges);
      for (let c = 0; c < changes; c++) {
        ts += 1000;
        if (rnd() < 0.5) state.attributes = { ...state.attributes, stage: pick(STAGES) };
        if (rnd() < 0.3) state.attributes = { ...state.attributes, city: pick(CITIES) };
        if (rnd() < 0.15) state.name = `${pick(FIRST)} ${last}`;
        const event = {
          eventId: `evt-${++eventNo}`, contactId, phone, name: state.name, email: state.email,
          tags: ['whatsapp'], attributes: { ...state.attributes }, ts: new Date(ts).toISOString(),
        };
        plan.push({ at, event, kind: 'change' });
        if (rnd() < 0.06) plan.push({ at: at + 200 + Math.floor(rnd() * 800), event: { ...event }, kind: 'redelivery' });
        if (rnd() < 0.05) {
          // Sent after this change but stamped before it: the daemon must ignore it.
          plan.push({ at: at + 50, event: { ...event, eventId: `evt-${++eventNo}`, name: `${state.name} (stale)`, ts: new Date(ts - 500).toISOString() }, kind: 'out-of-order' });
        }
        if (rnd() < 0.03) plan.push({ at: at + 10, event: pick(BAD)({ ...event, eventId: `evt-${++eventNo}` }), kind: 'bad' });
        at += 20 + Math.floor(rnd() * 120);
      }
    }
    expected.set(contactId, { ...state, attributes: { ...state.attributes } });
  }
  plan.sort((a, b) => a.at - b.at);
  return { plan, expected };
}

/** The plan cut into consecutive slices of `sliceMs` by `at` (empty slices included), for sending on a timer. */
export function sliceStream(plan: readonly PlannedEvent[], sliceMs: number): PlannedEvent[][] {
  const slices: PlannedEvent[][] = [];
  for (const p of plan) {
    const n = Math.floor(p.at / sliceMs);
    while (slices.length <= n) slices.push([]);
    slices[n]!.push(p);
  }
  return slices;
}

/** How many of each kind a plan holds. */
export function countKinds(plan: readonly PlannedEvent[]): Record<PlannedKind, number> {
  const counts: Record<PlannedKind, number> = { change: 0, redelivery: 0, 'out-of-order': 0, bad: 0 };
  for (const p of plan) counts[p.kind]++;
  return counts;
}
