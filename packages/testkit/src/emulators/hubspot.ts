import { randomUUID } from 'node:crypto';
import { isPlainObject } from '../reference-crm/body';
import type { CrmRoute } from '../reference-crm/types';
import {
  authorizationToken, isoTime, RateWindow, sameSecret, segmentsAfter, startEmulator,
  type Emulator, type EmulatorOptions, type EmulatorRequest, type Reply, type RouteMatch, type VendorApi,
} from './base';

/**
 * HubSpot CRM v3 contacts, as developers.hubspot.com documents them: Bearer auth, `{"properties": {...}}` bodies,
 * POST /crm/v3/objects/contacts (201), POST …/contacts/search with filterGroups (EQ filters, sorts, limit), PATCH
 * …/contacts/{id}, 409 CONFLICT "Contact already exists. Existing ID: N" on a duplicate email, 404 for archived or
 * merged ids, X-HubSpot-RateLimit-* headers and a 429 when the app's window is used up (search answers carry no
 * rate-limit headers, as documented), and search results that lag behind writes.
 */

export interface HubSpotContact {
  id: string;
  properties: Record<string, string | null>;
  createdAt: string;
  updatedAt: string;
  archived: boolean;
}

export interface HubSpotEmulatorOptions extends EmulatorOptions {
  /** Contacts created are invisible to search for this long (HubSpot indexes asynchronously). Default 0. */
  searchLagMs?: number;
  /** Requests per window before 429 (search not counted). Default 100 per 10 000 ms, HubSpot's free-tier burst limit. */
  rateLimit?: { max: number; intervalMs: number };
  /** Custom contact properties the portal has, besides HubSpot's defaults. Default ['utm_campaign']. */
  customProperties?: string[];
}

export interface HubSpotEmulator extends Emulator<HubSpotContact> {
  /** Merges `mergedId` into `primaryId` as HubSpot's merge does: the merged id is gone (404), the primary stays. */
  mergeContacts(primaryId: string, mergedId: string): boolean;
}

const BASE = '/crm/v3/objects/contacts';
const DEFAULT_PROPERTIES = [
  'email', 'firstname', 'lastname', 'phone', 'mobilephone', 'company', 'website', 'jobtitle', 'city', 'state', 'country',
  'zip', 'address', 'lifecyclestage', 'hs_lead_status', 'message',
];
// What a search returns when the request names no `properties`.
const SEARCH_DEFAULT_PROPERTIES = ['createdate', 'email', 'firstname', 'hs_object_id', 'lastmodifieddate', 'lastname'];

interface StoredContact {
  id: string;
  properties: Record<string, string>;
  createdAt: number;
  updatedAt: number;
  archived: boolean;
}

export async function startHubSpotEmulator(opts: HubSpotEmulatorOptions = {}): Promise<HubSpotEmulator> {
  const api = new HubSpotApi(opts);
  const server = await startEmulator(api, opts);
  return Object.assign(server, { mergeContacts: (primaryId: string, mergedId: string) => api.merge(primaryId, mergedId) });
}

class HubSpotApi implements VendorApi<HubSpotContact> {
  readonly token: string;
  private readonly now: () => number;
  private readonly lagMs: number;
  private readonly window: RateWindow;
  private readonly known: Set<string>;
  private contacts: StoredContact[] = [];
  private nextId = 1001;

  constructor(opts: HubSpotEmulatorOptions) {
    this.token = opts.token ?? 'hubspot-test-token';
    this.now = opts.now ?? Date.now;
    this.lagMs = opts.searchLagMs ?? 0;
    const rl = opts.rateLimit ?? { max: 100, intervalMs: 10_000 };
    this.window = new RateWindow(rl.max, rl.intervalMs, this.now);
    this.known = new Set([...DEFAULT_PROPERTIES, ...(opts.customProperties ?? ['utm_campaign'])]);
  }

  match(method: string, url: URL): RouteMatch | undefined {
    const rest = segmentsAfter(url.pathname, BASE);
    if (!rest) return undefined;
    if (rest.length === 0 && method === 'POST') return { route: 'create' };
    if (rest.length === 1 && rest[0] === 'search' && method === 'POST') return { route: 'fetch' };
    if (rest.length === 1 && method === 'PATCH') return { route: 'update', params: { id: rest[0]! } };
    return undefined;
  }

  handle(req: EmulatorRequest): Reply {
    if (!sameSecret(authorizationToken(req, 'Bearer'), this.token)) {
      return error(401, 'Authentication credentials not found. This API supports OAuth 2.0 authentication.', 'INVALID_AUTHENTICATION');
    }
    // Search has its own limit and, as documented, its answers carry no rate-limit headers.
    if (req.route === 'fetch') return this.search(req);
    const quota = this.window.hit();
    const headers = {
      'X-HubSpot-RateLimit-Max': String(this.window.max),
      'X-HubSpot-RateLimit-Remaining': String(quota.remaining),
      'X-HubSpot-RateLimit-Interval-Milliseconds': String(this.window.intervalMs),
    };
    const reply = quota.allowed ? this.write(req) : rateLimited();
    reply.headers = { ...headers, ...reply.headers };
    return reply;
  }

  private write(req: EmulatorRequest): Reply {
    if (!req.body.ok) return error(400, `Invalid input JSON on line 1: ${req.body.reason}`, 'VALIDATION_ERROR');
    const props = req.body.value.properties;
    if (!isPlainObject(props)) return error(400, 'Invalid input: "properties" must be an object', 'VALIDATION_ERROR');
    const invalid = Object.keys(props).filter((k) => !this.known.has(k));
    if (invalid.length > 0) {
      const details = invalid.map((name) => ({ isValid: false, message: `Property "${name}" does not exist`, error: 'PROPERTY_DOESNT_EXIST', name }));
      return error(400, `Property values were not valid: ${JSON.stringify(details)}`, 'VALIDATION_ERROR');
    }
    const email = typeof props.email === 'string' && props.email !== '' ? props.email : undefined;
    if (req.route === 'create') {
      const existing = email && this.byEmail(email);
      if (existing) return error(409, `Contact already exists. Existing ID: ${existing.id}`, 'CONFLICT');
      const t = this.now();
      const contact: StoredContact = { id: String(this.nextId++), properties: {}, createdAt: t, updatedAt: t, archived: false };
      applyProperties(contact, props);
      this.contacts.push(contact);
      return { status: 201, body: view(contact) };
    }
    const contact = this.contacts.find((c) => c.id === req.params.id && !c.archived);
    if (!contact) return error(404, 'resource not found', 'OBJECT_NOT_FOUND');
    const other = email && this.byEmail(email);
    if (other && other !== contact) return error(409, `Contact already exists. Existing ID: ${other.id}`, 'CONFLICT');
    applyProperties(contact, props);
    contact.updatedAt = this.now();
    return { status: 200, body: view(contact) };
  }

  private search(req: EmulatorRequest): Reply {
    if (!req.body.ok) return error(400, `Invalid input JSON on line 1: ${req.body.reason}`, 'VALIDATION_ERROR');
    const { filterGroups, sorts, properties, limit } = req.body.value;
    if (!Array.isArray(filterGroups)) return error(400, 'Invalid input: "filterGroups" must be an array', 'VALIDATION_ERROR');
    const groups: Array<Array<{ propertyName: string; value: string }>> = [];
    for (const g of filterGroups) {
      const filters = isPlainObject(g) && Array.isArray(g.filters) ? g.filters : undefined;
      if (!filters) return error(400, 'Invalid input: each filter group needs "filters"', 'VALIDATION_ERROR');
      for (const f of filters) {
        if (!isPlainObject(f) || typeof f.propertyName !== 'string' || f.value === undefined) {
          return error(400, 'Invalid input: a filter needs "propertyName", "operator" and "value"', 'VALIDATION_ERROR');
        }
        if (f.operator !== 'EQ') return error(400, `This emulator supports only the EQ operator, not ${JSON.stringify(f.operator)}`, 'VALIDATION_ERROR');
      }
      groups.push(filters as Array<{ propertyName: string; value: string }>);
    }
    const cutoff = this.now() - this.lagMs;
    // Groups are ORed, filters within a group ANDed; text comparison ignores case as HubSpot's search does.
    let hits = this.contacts.filter((c) => !c.archived && c.createdAt <= cutoff
      && groups.some((fs) => fs.every((f) => (c.properties[f.propertyName] ?? '').toLowerCase() === String(f.value).toLowerCase())));
    const sort = Array.isArray(sorts) && isPlainObject(sorts[0]) ? sorts[0] : undefined;
    if (sort) {
      const dir = sort.direction === 'DESCENDING' ? -1 : 1;
      const key = (c: StoredContact) => (sort.propertyName === 'createdate' ? c.createdAt : sort.propertyName === 'lastmodifieddate' ? c.updatedAt : 0);
      hits = [...hits].sort((a, b) => dir * (key(a) - key(b) || Number(a.id) - Number(b.id)));
    }
    const max = typeof limit === 'number' && limit > 0 ? Math.min(limit, 200) : 10;
    const wanted = Array.isArray(properties) ? properties.map(String) : SEARCH_DEFAULT_PROPERTIES;
    const results = hits.slice(0, max).map((c) => view(c, wanted));
    const body: Record<string, unknown> = { total: hits.length, results };
    if (hits.length > max) body.paging = { next: { after: String(max), link: `?after=${max}` } };
    return { status: 200, body };
  }

  private byEmail(email: string): StoredContact | undefined {
    const wanted = email.toLowerCase();
    return this.contacts.find((c) => !c.archived && c.properties.email?.toLowerCase() === wanted);
  }

  merge(primaryId: string, mergedId: string): boolean {
    const primary = this.contacts.find((c) => c.id === primaryId && !c.archived);
    const merged = this.contacts.find((c) => c.id === mergedId && !c.archived);
    if (!primary || !merged || primary === merged) return false;
    merged.archived = true;
    const ids = [primary.properties.hs_merged_object_ids, mergedId].filter(Boolean).join(';');
    primary.properties.hs_merged_object_ids = ids;
    primary.updatedAt = this.now();
    return true;
  }

  unknownRoute(): Reply {
    return { status: 404, body: undefined };
  }

  failure(route: CrmRoute | 'unknown', status: number, message: string): Reply {
    if (status === 429) return rateLimited();
    return error(status, message, status === 404 ? 'OBJECT_NOT_FOUND' : status >= 500 ? 'INTERNAL_ERROR' : 'VALIDATION_ERROR');
  }

  records(): HubSpotContact[] {
    return this.contacts.filter((c) => !c.archived).map((c) => view(c));
  }

  deleteRecord(id: string): boolean {
    const c = this.contacts.find((x) => x.id === id && !x.archived);
    if (c) c.archived = true;
    return Boolean(c);
  }

  reset(): void {
    this.contacts = [];
    this.nextId = 1001;
    this.window.reset();
  }
}

/** An empty string clears a property, as HubSpot documents; other values are stored as strings. */
function applyProperties(contact: StoredContact, props: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(props)) {
    if (v === '' || v === null) delete contact.properties[k];
    else contact.properties[k] = String(v);
  }
}

function view(c: StoredContact, only?: string[]): HubSpotContact {
  const all: Record<string, string | null> = {
    ...c.properties, createdate: isoTime(c.createdAt), lastmodifieddate: isoTime(c.updatedAt), hs_object_id: c.id,
  };
  const properties = only ? Object.fromEntries(only.map((k) => [k, all[k] ?? null])) : all;
  return { id: c.id, properties, createdAt: isoTime(c.createdAt), updatedAt: isoTime(c.updatedAt), archived: c.archived };
}

function error(status: number, message: string, category: string): Reply {
  return { status, body: { status: 'error', message, correlationId: randomUUID(), category } };
}

function rateLimited(): Reply {
  return {
    status: 429,
    body: {
      status: 'error', message: 'You have reached your ten_secondly_rolling limit.', errorType: 'RATE_LIMIT',
      correlationId: randomUUID(), policyName: 'TEN_SECONDLY_ROLLING', groupName: 'publicapi:app-api-calls-ten-secondly',
    },
  };
}
