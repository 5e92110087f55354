import type { CrmRoute } from '../reference-crm/types';
import { isPlainObject } from '../reference-crm/body';
import {
  RateWindow, sameSecret, segmentsAfter, startEmulator,
  type Emulator, type EmulatorOptions, type EmulatorRequest, type Reply, type RouteMatch, type VendorApi,
} from './base';

/**
 * Pipedrive persons (API v1), as developers.pipedrive.com documents them: `?api_token=` in the query string,
 * POST /v1/persons (name required; `email` and `phone` as arrays of {value, primary, label}; custom fields under their
 * 40-hex-character keys), GET /v1/persons/search?term=&fields=email|phone&exact_match=true, PUT /v1/persons/{id},
 * `{"success": false, "error": …}` failures, x-ratelimit-* headers. Pipedrive does not de-duplicate: two creates
 * with the same email are two persons.
 */

export interface PipedriveContactValue {
  value: string;
  primary: boolean;
  label: string;
}

export type PipedrivePerson = Record<string, unknown> & {
  id: number;
  name: string;
  email: PipedriveContactValue[];
  phone: PipedriveContactValue[];
  active_flag: boolean;
  add_time: string;
  update_time: string;
};

export interface PipedriveEmulatorOptions extends EmulatorOptions {
  /** Requests per window before 429. Default 80 per 2000 ms (Pipedrive's rolling 2-second window). */
  rateLimit?: { max: number; intervalMs: number };
}

const PERSONS = '/v1/persons';
const CUSTOM_KEY = /^[0-9a-f]{40}$/;
const FIELDS = new Set(['name', 'first_name', 'last_name', 'owner_id', 'org_id', 'visible_to', 'marketing_status', 'label']);
const SEARCH_FIELDS = new Set(['name', 'email', 'phone', 'notes', 'custom_fields']);
const ERROR_INFO = 'Please check developers.pipedrive.com for more information about Pipedrive API.';

export async function startPipedriveEmulator(opts: PipedriveEmulatorOptions = {}): Promise<Emulator<PipedrivePerson>> {
  const api = new PipedriveApi(opts);
  return startEmulator(api, opts);
}

class PipedriveApi implements VendorApi<PipedrivePerson> {
  readonly token: string;
  private readonly now: () => number;
  private readonly window: RateWindow;
  private persons: PipedrivePerson[] = [];
  private nextId = 1;

  constructor(opts: PipedriveEmulatorOptions) {
    this.token = opts.token ?? 'pipedrive-test-token';
    this.now = opts.now ?? Date.now;
    const rl = opts.rateLimit ?? { max: 80, intervalMs: 2000 };
    this.window = new RateWindow(rl.max, rl.intervalMs, this.now);
  }

  match(method: string, url: URL): RouteMatch | undefined {
    const rest = segmentsAfter(url.pathname, PERSONS);
    if (!rest) return undefined;
    if (rest.length === 0 && method === 'POST') return { route: 'create' };
    if (rest.length === 1 && rest[0] === 'search' && method === 'GET') return { route: 'fetch' };
    if (rest.length === 1 && method === 'PUT') return { route: 'update', params: { id: rest[0]! } };
    return undefined;
  }

  handle(req: EmulatorRequest): Reply {
    if (!sameSecret(req.query.get('api_token') ?? undefined, this.token)) return failed(401, 'unauthorized access');
    const quota = this.window.hit();
    const reply = quota.allowed ? this.dispatch(req) : this.failure(req.route, 429, 'Request over limit');
    reply.headers = {
      'x-ratelimit-limit': String(this.window.max),
      'x-ratelimit-remaining': String(quota.remaining),
      'x-ratelimit-reset': String(Math.ceil(quota.resetMs / 1000)),
      ...reply.headers,
    };
    return reply;
  }

  private dispatch(req: EmulatorRequest): Reply {
    if (req.route === 'fetch') return this.search(req.query);
    if (!req.body.ok) return failed(400, `Invalid JSON: ${req.body.reason}`);
    const body = req.body.value;
    if (req.route === 'create') {
      if (typeof body.name !== 'string' || body.name.trim() === '') return failed(400, 'Name must be given.');
      const t = this.stamp();
      const person: PipedrivePerson = { id: this.nextId++, name: body.name, email: [], phone: [], active_flag: true, add_time: t, update_time: t };
      const bad = apply(person, body);
      if (bad) return failed(400, bad);
      this.persons.push(person);
      return { status: 201, body: { success: true, data: structuredClone(person), related_objects: {} } };
    }
    const person = this.persons.find((p) => String(p.id) === req.params.id && p.active_flag);
    if (!person) return failed(404, 'Person not found');
    if (body.name !== undefined && (typeof body.name !== 'string' || body.name.trim() === '')) return failed(400, 'Name must be given.');
    const bad = apply(person, body);
    if (bad) return failed(400, bad);
    person.update_time = this.stamp();
    return { status: 200, body: { success: true, data: structuredClone(person), related_objects: {} } };
  }

  private search(query: URLSearchParams): Reply {
    const term = query.get('term') ?? '';
    const exact = ['true', '1'].includes(query.get('exact_match') ?? '');
    if (term.length < (exact ? 1 : 2)) return failed(400, `term must be at least ${exact ? 1 : 2} characters long`);
    const fields = (query.get('fields') ?? 'name,email,phone,notes,custom_fields').split(',').map((f) => f.trim()).filter(Boolean);
    const unknown = fields.find((f) => !SEARCH_FIELDS.has(f));
    if (unknown) return failed(400, `fields: "${unknown}" is not one of name, email, phone, notes, custom_fields`);
    const t = term.toLowerCase();
    // exact_match: the whole value equals the term (case-insensitively); otherwise the term appears in it.
    const hit = (v: unknown) => typeof v === 'string' && (exact ? v.toLowerCase() === t : v.toLowerCase().includes(t));
    const items = this.persons.filter((p) => p.active_flag).filter((p) => fields.some((f) => {
      if (f === 'name') return hit(p.name);
      if (f === 'email') return p.email.some((e) => hit(e.value));
      if (f === 'phone') return p.phone.some((e) => hit(e.value));
      if (f === 'custom_fields') return Object.entries(p).some(([k, v]) => CUSTOM_KEY.test(k) && hit(v));
      return false;
    })).map((p) => ({
      result_score: 1,
      item: {
        id: p.id, type: 'person', name: p.name, phones: p.phone.map((e) => e.value), emails: p.email.map((e) => e.value),
        visible_to: 3, owner: { id: 1 }, organization: null, custom_fields: [], notes: [],
      },
    }));
    const start = Number(query.get('start') ?? 0) || 0;
    const limit = Number(query.get('limit') ?? 100) || 100;
    return {
      status: 200,
      body: {
        success: true,
        data: { items: items.slice(start, start + limit) },
        additional_data: { pagination: { start, limit, more_items_in_collection: items.length > start + limit } },
      },
    };
  }

  private stamp(): string {
    return new Date(this.now()).toISOString().replace('T', ' ').slice(0, 19);
  }

  unknownRoute(): Reply {
    return failed(404, 'Unknown method .');
  }

  failure(route: CrmRoute | 'unknown', status: number, message: string): Reply {
    return failed(status, message);
  }

  records(): PipedrivePerson[] {
    return this.persons.filter((p) => p.active_flag).map((p) => structuredClone(p));
  }

  deleteRecord(id: string): boolean {
    const p = this.persons.find((x) => String(x.id) === id && x.active_flag);
    if (p) p.active_flag = false;
    return Boolean(p);
  }

  reset(): void {
    this.persons = [];
    this.nextId = 1;
    this.window.reset();
  }
}

function failed(status: number, message: string): Reply {
  return { status, body: { success: false, error: message, errorCode: status, error_info: ERROR_INFO, data: null, additional_data: null } };
}

/** Applies a create/update body; returns the reason it is refused. Unknown keys are ignored, as Pipedrive does. */
function apply(person: PipedrivePerson, body: Record<string, unknown>): string | undefined {
  for (const key of ['email', 'phone'] as const) {
    if (!(key in body)) continue;
    const list = contactValues(body[key]);
    if (typeof list === 'string') return `${key}: ${list}`;
    person[key] = list;
  }
  for (const [k, v] of Object.entries(body)) {
    if (FIELDS.has(k)) person[k] = v;
    else if (CUSTOM_KEY.test(k)) {
      if (v === null || v === '') delete person[k];
      else person[k] = v;
    }
  }
  return undefined;
}

/** `"a@x"`, `["a@x"]` or `[{value, primary, label}]` → the stored list (one primary); null or [] clears it. */
function contactValues(input: unknown): PipedriveContactValue[] | string {
  if (input === null || input === undefined || input === '') return [];
  const items = Array.isArray(input) ? input : [input];
  const out: PipedriveContactValue[] = [];
  for (const it of items) {
    if (typeof it === 'string') out.push({ value: it, primary: false, label: '' });
    else if (isPlainObject(it) && typeof it.value === 'string') {
      out.push({ value: it.value, primary: it.primary === true, label: typeof it.label === 'string' ? it.label : '' });
    } else return 'each item must be a string or an object with a string "value"';
  }
  if (out.length > 0 && !out.some((e) => e.primary)) out[0]!.primary = true;
  return out;
}
