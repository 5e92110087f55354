import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import { LRUCache } from 'lru-cache';
import { ContactValidationError, type FieldError } from './errors';

export type AttributeValue = string | number | boolean | null;

/** A contact as the mappings see it: validated, phone in E.164. */
export interface Contact {
  tenant: string;
  contactId: string;
  /** E.164, e.g. `+919876543210`. */
  phone: string;
  email?: string;
  name?: string;
  tags: string[];
  attributes: Record<string, AttributeValue>;
  /** Id of the event this state came from, for de-duplicating redeliveries. */
  eventId?: string;
  /** Time of the change at the source (ISO 8601), used to drop out-of-order events. */
  ts?: string;
}

export interface ContactParseOptions {
  /** Tenants events may name. When there is exactly one, `tenant` may be omitted. */
  tenants?: readonly string[];
  /** Tenant used when the event names none (overrides the single-tenant rule). */
  defaultTenant?: string;
  /** Country assumed for a phone written without a country code and without `+`. Default: the digits are read as international. */
  defaultCountry?: CountryCode;
  /**
   * The server's clock, in ms since the epoch: a `ts` more than MAX_TS_AHEAD_MS after it is refused, since every
   * later change of the contact would look older than it and be ignored. Unset: no bound.
   */
  now?: number;
}

/**
 * How far ahead of the server's clock an event's `ts` may be: a day covers clocks that disagree and a local time
 * labelled UTC (up to 14 h ahead), and refuses a far-future time (seconds or microseconds read as milliseconds, a
 * typo'd year) that would freeze the contact.
 */
export const MAX_TS_AHEAD_MS = 24 * 3_600_000;

export type ParseResult = { ok: true; contact: Contact } | { ok: false; errors: FieldError[] };

const MAX_ID = 256;
const MAX_TEXT = 1024;
// Deliberately plain: one @, no spaces, a dot in the domain, no empty labels. Full RFC 5322 admits addresses no CRM accepts.
const EMAIL = /^[^\s\x00-\x1f\x7f@"(),:;<>[\\\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number' && !Number.isFinite(v)) return `${v} (a number too large for JSON)`;
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** A value as an error message quotes it (a number as JSON cannot: 1e400 is read as Infinity). */
function quote(v: unknown): string | undefined {
  return typeof v === 'number' ? String(v) : JSON.stringify(v);
}

/** An attribute's field name: `attributes.city`, or `attributes["utm.source"]` for a key that is not a plain name. */
function attributeField(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `attributes.${key}` : `attributes[${JSON.stringify(key)}]`;
}

// A date-time with an explicit zone: `Date` would read anything else ("5", "May 6", no zone) in the runner's own zone, or guess.
const ISO_TIME = /^(\d{4}-\d{2}-\d{2})T(\d{2}):\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|([+-])(\d{2}):(\d{2}))$/;

/** Milliseconds since the epoch for an ISO 8601 time (or a number of milliseconds); undefined when it is not one. */
/** A duration in the largest whole unit that fits: 26 hours, 3 days, 41 years. */
function aheadBy(ms: number): string {
  const hours = ms / 3_600_000;
  if (hours < 48) return `${Math.floor(hours)} hours`;
  const days = hours / 24;
  return days < 730 ? `${Math.floor(days)} days` : `${Math.floor(days / 365.25)} years`;
}

function timeOf(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && Math.abs(v) <= 8.64e15 ? v : undefined;
  const m = typeof v === 'string' ? ISO_TIME.exec(v) : null;
  if (!m) return undefined;
  const ms = Date.parse(v as string);
  if (Number.isNaN(ms)) return undefined;
  // Date rolls impossible times over (Feb 30 → Mar 1, 24:00 → the next day): refuse them instead.
  const offsetMs = m[3] ? (m[3] === '-' ? -1 : 1) * (Number(m[4]) * 60 + Number(m[5])) * 60_000 : 0;
  const wallClock = new Date(ms + offsetMs).toISOString();
  return wallClock.slice(0, 10) === m[1] && wallClock.slice(11, 13) === m[2] ? ms : undefined;
}

/**
 * Phones normalized lately, per default country, by raw spelling; '' for a spelling that is not a phone. Parsing with
 * libphonenumber costs about as much as a durable insert, and a contact's events repeat its phone (bursts of
 * snapshots, updates), so the answer for a spelling is kept. It is exactly what parsing would give again. One cache
 * per default country (as many as the tenants configure) keys its entries by the spelling itself: a key joined from
 * the two would be a new string to build and hash on every event.
 */
const normalizedPhones = new Map<string, LRUCache<string, string>>();
const PHONE_CACHE_SIZE = 20_000;
/** Longer spellings are parsed every time, so a hostile sender cannot fill the cache with megabytes. */
const MAX_CACHED_SPELLING = 64;

/** Normalizes a phone as the platform sends it (`+91 98765 43210`, `919876543210`, `+91-987-654-3210`) to E.164. */
export function normalizePhone(raw: string, defaultCountry?: CountryCode): string | undefined {
  if (raw.length > MAX_CACHED_SPELLING) return parsePhone(raw, defaultCountry);
  const country = defaultCountry ?? '';
  let cache = normalizedPhones.get(country);
  if (cache === undefined) normalizedPhones.set(country, cache = new LRUCache({ max: PHONE_CACHE_SIZE }));
  let normalized = cache.get(raw);
  if (normalized === undefined) {
    normalized = parsePhone(raw, defaultCountry) ?? '';
    cache.set(raw, normalized);
  }
  return normalized === '' ? undefined : normalized;
}

function parsePhone(raw: string, defaultCountry?: CountryCode): string | undefined {
  const trimmed = raw.trim();
  if (!/^[+\d][\d\s().-]*$/.test(trimmed)) return undefined;
  const digits = trimmed.replace(/\D/g, '');
  if (digits.length < 7 || digits.length > 15) return undefined;
  const parsed = trimmed.startsWith('+') || !defaultCountry
    ? parsePhoneNumberFromString('+' + digits)
    : parsePhoneNumberFromString(trimmed, defaultCountry);
  if (!parsed || !parsed.isPossible()) return undefined;
  return parsed.number;
}

/** Whether an optional field counts as absent: missing, null or the empty string. */
function isAbsent(v: unknown): boolean {
  return v === undefined || v === null || v === '';
}

/**
 * The value `v` of a string field, or undefined (absent, or wrong, with its error pushed). Callers read the field by
 * name (`e.email`, not `e[field]`), which stays a fast property load however many fields there are.
 */
function stringField(v: unknown, field: string, max: number, required: boolean, errors: FieldError[]): string | undefined {
  if (isAbsent(v)) {
    if (required) errors.push({ field, message: 'is required' });
    return undefined;
  }
  if (typeof v !== 'string') { errors.push({ field, message: `must be a string, got ${describe(v)}` }); return undefined; }
  if (v.length > max) { errors.push({ field, message: `must be at most ${max} characters` }); return undefined; }
  return v;
}

/** Validates one contact event (CONTRACT.md, "The contact event crm-sync ingests"). Never throws. */
export function parseContactEvent(input: unknown, options: ContactParseOptions = {}): ParseResult {
  const errors: FieldError[] = [];
  if (!isPlainObject(input)) return { ok: false, errors: [{ field: '(event)', message: `must be a JSON object, got ${describe(input)}` }] };
  const e = input;

  const eventId = stringField(e.eventId, 'eventId', MAX_ID, false, errors);
  let contactId = stringField(e.contactId, 'contactId', MAX_ID, true, errors);
  // A URL cannot name these (a path segment . or .. is resolved away, even percent-encoded), so the contact's status
  // could never be read.
  if (contactId === '.' || contactId === '..') { errors.push({ field: 'contactId', message: `must not be "${contactId}"` }); contactId = undefined; }

  let tenant = stringField(e.tenant, 'tenant', MAX_ID, false, errors);
  const tenants = options.tenants;
  if (isAbsent(e.tenant)) {
    tenant = options.defaultTenant ?? (tenants?.length === 1 ? tenants[0] : undefined);
    if (tenant === undefined) errors.push({ field: 'tenant', message: 'is required when more than one tenant is configured' });
  } else if (tenant !== undefined && tenants && !tenants.includes(tenant)) {
    errors.push({ field: 'tenant', message: `unknown tenant ${JSON.stringify(tenant)}` });
  }

  let phone: string | undefined;
  const rawPhone = e.phone;
  if (isAbsent(rawPhone)) errors.push({ field: 'phone', message: 'is required' });
  else if (typeof rawPhone !== 'string' && typeof rawPhone !== 'number') errors.push({ field: 'phone', message: `must be a string, got ${describe(rawPhone)}` });
  else {
    phone = normalizePhone(String(rawPhone), options.defaultCountry);
    if (!phone) errors.push({ field: 'phone', message: `${JSON.stringify(String(rawPhone).slice(0, 40))} is not a phone number with a country code` });
  }

  let email = stringField(e.email, 'email', 254, false, errors);
  if (email !== undefined) {
    email = email.trim();
    if (!EMAIL.test(email)) { errors.push({ field: 'email', message: `${JSON.stringify(email.slice(0, 80))} is not a valid email address` }); email = undefined; }
  }

  const name = stringField(e.name, 'name', MAX_TEXT, false, errors)?.trim();

  const tags: string[] = [];
  const rawTags = e.tags;
  if (rawTags !== undefined && rawTags !== null) {
    if (!Array.isArray(rawTags)) errors.push({ field: 'tags', message: `must be an array of strings, got ${describe(rawTags)}` });
    else for (let i = 0; i < rawTags.length; i++) {
      const t: unknown = rawTags[i];
      if (typeof t !== 'string') errors.push({ field: `tags[${i}]`, message: `must be a string, got ${describe(t)}` });
      else tags.push(t);
    }
  }

  const attributes: Record<string, AttributeValue> = {};
  const rawAttributes = e.attributes;
  if (rawAttributes !== undefined) {
    if (!isPlainObject(rawAttributes)) errors.push({ field: 'attributes', message: `must be an object of scalar values, got ${describe(rawAttributes)}` });
    else for (const k of Object.keys(rawAttributes)) {
      const v = rawAttributes[k];
      // `attributes[k] = v` would set the object's prototype, silently dropping the attribute; no CRM takes the name.
      if (k === '__proto__') errors.push({ field: attributeField(k), message: 'is not a usable attribute name (JavaScript reserves __proto__): rename the attribute' });
      else if (v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) attributes[k] = v;
      else errors.push({ field: attributeField(k), message: `must be a string, number, boolean or null, got ${describe(v)}` });
    }
  }

  let ts: string | undefined;
  if (e.ts !== undefined && e.ts !== null) {
    const ms = timeOf(e.ts);
    if (ms === undefined) errors.push({ field: 'ts', message: `must be an ISO 8601 time with a zone (e.g. 2024-05-06T09:14:03Z), got ${quote(e.ts)?.slice(0, 40)}` });
    else if (options.now !== undefined && ms > options.now + MAX_TS_AHEAD_MS) {
      errors.push({ field: 'ts', message: `is ${aheadBy(ms - options.now)} ahead of this server's clock (${new Date(ms).toISOString()}; at most a day is accepted): a sender clock that is wrong, or a time in seconds or microseconds rather than milliseconds? Every later change of the contact would look older and be ignored` });
    } else ts = new Date(ms).toISOString();
  }

  if (errors.length > 0) return { ok: false, errors };
  const contact: Contact = { tenant: tenant!, contactId: contactId!, phone: phone!, tags, attributes };
  if (email !== undefined) contact.email = email;
  if (name) contact.name = name;
  if (eventId !== undefined) contact.eventId = eventId;
  if (ts !== undefined) contact.ts = ts;
  return { ok: true, contact };
}

/** Like parseContactEvent, but throws a ContactValidationError naming every bad field. */
export function toContact(input: unknown, options: ContactParseOptions = {}): Contact {
  const r = parseContactEvent(input, options);
  if (!r.ok) {
    const id = isPlainObject(input) && typeof input.contactId === 'string' ? input.contactId : undefined;
    throw new ContactValidationError(r.errors, { contactId: id });
  }
  return r.contact;
}
