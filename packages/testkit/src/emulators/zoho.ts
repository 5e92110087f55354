import type { CrmRoute } from '../reference-crm/types';
import { isPlainObject } from '../reference-crm/body';
import {
  authorizationToken, isoTime, sameSecret, segmentsAfter, startEmulator,
  type Emulator, type EmulatorOptions, type EmulatorRequest, type Reply, type RouteMatch, type VendorApi,
} from './base';

/**
 * Zoho CRM v2 Leads, as zoho.com/crm/developer/docs/api/v2 documents them: `Authorization: Zoho-oauthtoken <token>`,
 * POST /crm/v2/Leads/upsert with `{"data": [...], "duplicate_check_fields": [...]}` (fields checked in order; Email by
 * default for Leads), one result per record in `data[]` with `code`, `details`, `status`, `message`, `action`.
 * HTTP status: 201 when every record was inserted, 200 when any was updated, 202 when every record failed
 * (MANDATORY_NOT_FOUND, INVALID_DATA), 207 when a batch mixes both. GET /crm/v2/Leads/search?email=|phone= answers
 * 204 with no body when nothing matches.
 */

export type ZohoLead = Record<string, unknown> & { id: string };

export interface ZohoEmulatorOptions extends EmulatorOptions {
  /**
   * Which `Zoho-oauthtoken` values are valid, for OAuth tests (e.g. `startOAuthServer(…).accepts`): access tokens that
   * expire. Default: only `token`.
   */
  acceptsToken?: (token: string) => boolean;
}

const MODULE = '/crm/v2/Leads';
const MANDATORY = ['Last_Name'];
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const SYSTEM_FIELDS = new Set(['id', 'Created_Time', 'Modified_Time', 'Created_By', 'Modified_By', 'Owner']);
const USER = { name: 'Emulator Admin', id: '3477061000000105001' };

interface RecordResult {
  ok: boolean;
  updated?: boolean;
  item: Record<string, unknown>;
}

export async function startZohoEmulator(opts: ZohoEmulatorOptions = {}): Promise<Emulator<ZohoLead>> {
  const api = new ZohoApi(opts);
  return startEmulator(api, opts);
}

class ZohoApi implements VendorApi<ZohoLead> {
  readonly token: string;
  private readonly now: () => number;
  private leads: Array<{ lead: ZohoLead; deleted: boolean }> = [];
  private seq = 0;

  private readonly acceptsToken: (token: string) => boolean;

  constructor(opts: ZohoEmulatorOptions) {
    this.token = opts.token ?? 'zoho-test-token';
    this.now = opts.now ?? Date.now;
    this.acceptsToken = opts.acceptsToken ?? ((given) => sameSecret(given, this.token));
  }

  match(method: string, url: URL): RouteMatch | undefined {
    const rest = segmentsAfter(url.pathname, MODULE);
    if (rest?.length !== 1) return undefined;
    if (rest[0] === 'upsert' && method === 'POST') return { route: 'upsert' };
    if (rest[0] === 'search' && method === 'GET') return { route: 'fetch' };
    return undefined;
  }

  handle(req: EmulatorRequest): Reply {
    const given = authorizationToken(req, 'Zoho-oauthtoken');
    if (given === undefined) return error(401, 'AUTHENTICATION_FAILURE', 'Authentication failed');
    if (!this.acceptsToken(given)) return error(401, 'INVALID_TOKEN', 'invalid oauth token');
    return req.route === 'fetch' ? this.search(req.query) : this.upsert(req);
  }

  private upsert(req: EmulatorRequest): Reply {
    if (!req.body.ok) return error(400, 'INVALID_DATA', 'body is not a valid JSON');
    const { data, duplicate_check_fields: dupFields } = req.body.value;
    if (!Array.isArray(data) || data.length === 0) return error(400, 'MANDATORY_NOT_FOUND', 'required param missing', { param: 'data' });
    if (data.length > 100) return error(400, 'LIMIT_EXCEEDED', 'the number of records exceeds 100', { limit: 100 });
    if (dupFields !== undefined && (!Array.isArray(dupFields) || !dupFields.every((f) => typeof f === 'string'))) {
      return error(400, 'INVALID_DATA', 'invalid data', { api_name: 'duplicate_check_fields' });
    }
    const checkFields = (dupFields as string[] | undefined) ?? ['Email'];
    const results = data.map((record) => this.upsertOne(record, checkFields));
    const failed = results.filter((r) => !r.ok).length;
    const status = failed === results.length ? 202 : failed > 0 ? 207 : results.some((r) => r.updated) ? 200 : 201;
    return { status, body: { data: results.map((r) => r.item) } };
  }

  private upsertOne(record: unknown, checkFields: string[]): RecordResult {
    if (!isPlainObject(record)) return recordError('INVALID_DATA', 'invalid data', {});
    for (const field of MANDATORY) {
      if (record[field] === undefined || record[field] === null || record[field] === '') {
        return recordError('MANDATORY_NOT_FOUND', 'required field not found', { api_name: field });
      }
    }
    if (record.Email !== undefined && record.Email !== null && record.Email !== '' && !(typeof record.Email === 'string' && EMAIL.test(record.Email))) {
      return recordError('INVALID_DATA', 'invalid data', { expected_data_type: 'email', api_name: 'Email' });
    }
    const dupField = checkFields.find((f) => this.findBy(f, record[f]));
    const existing = dupField ? this.findBy(dupField, record[dupField]) : undefined;
    const t = isoTime(this.now());
    const lead = existing ?? { id: `3477061000000${String(419000 + ++this.seq)}`, Created_Time: t, Created_By: USER };
    for (const [k, v] of Object.entries(record)) {
      if (SYSTEM_FIELDS.has(k)) continue;
      if (v === null) delete lead[k];
      else lead[k] = structuredClone(v);
    }
    lead.Modified_Time = t;
    lead.Modified_By = USER;
    if (!existing) this.leads.push({ lead, deleted: false });
    return {
      ok: true,
      updated: Boolean(existing),
      item: {
        code: 'SUCCESS', duplicate_field: dupField ?? null, action: existing ? 'update' : 'insert',
        details: { Modified_Time: t, Modified_By: USER, Created_Time: lead.Created_Time, id: lead.id, Created_By: lead.Created_By },
        message: existing ? 'record updated' : 'record added', status: 'success',
      },
    };
  }

  /** The oldest live lead whose field equals the value. */
  private findBy(field: string, value: unknown): ZohoLead | undefined {
    if (typeof value !== 'string' || value === '') return undefined;
    return this.live().find((l) => fieldEquals(l, field, value));
  }

  private live(): ZohoLead[] {
    return this.leads.filter((l) => !l.deleted).map((l) => l.lead);
  }

  private search(query: URLSearchParams): Reply {
    const email = query.get('email');
    const phone = query.get('phone');
    if (!email && !phone) return error(400, 'REQUIRED_PARAM_MISSING', 'One of the expected parameter is missing', { param: 'email, phone or criteria' });
    const hits = this.live().filter((l) => (!email || fieldEquals(l, 'Email', email))
      && (!phone || fieldEquals(l, 'Phone', phone) || fieldEquals(l, 'Mobile', phone)));
    if (hits.length === 0) return { status: 204 };
    return { status: 200, body: { data: hits.map((l) => structuredClone(l)), info: { per_page: 200, count: hits.length, page: 1, more_records: false } } };
  }

  unknownRoute(): Reply {
    return error(404, 'INVALID_URL_PATTERN', 'Please check if the URL trying to access is a correct one');
  }

  failure(route: CrmRoute | 'unknown', status: number, message: string): Reply {
    // Zoho reports a failed record inside `data[]`; the request-level failures have the same four keys at the top.
    if (status < 300 && (route === 'upsert' || route === 'create' || route === 'update')) {
      return { status, body: { data: [recordError('INVALID_DATA', message, {}).item] } };
    }
    const code = status === 429 ? 'TOO_MANY_REQUESTS' : status >= 500 ? 'INTERNAL_ERROR' : status === 413 ? 'LIMIT_EXCEEDED' : 'INVALID_REQUEST';
    return error(status, code, message);
  }

  records(): ZohoLead[] {
    return this.leads.filter((l) => !l.deleted).map((l) => structuredClone(l.lead));
  }

  deleteRecord(id: string): boolean {
    const entry = this.leads.find((l) => l.lead.id === id && !l.deleted);
    if (entry) entry.deleted = true;
    return Boolean(entry);
  }

  reset(): void {
    this.leads = [];
    this.seq = 0;
  }
}

/** Emails compare without case, as Zoho's duplicate check and search do. */
function fieldEquals(lead: ZohoLead, field: string, value: string): boolean {
  const v = lead[field];
  return typeof v === 'string' && (field === 'Email' ? v.toLowerCase() === value.toLowerCase() : v === value);
}

function recordError(code: string, message: string, details: Record<string, unknown>): RecordResult {
  return { ok: false, item: { code, details, message, status: 'error' } };
}

function error(status: number, code: string, message: string, details: Record<string, unknown> = {}): Reply {
  return { status, body: { code, details, message, status: 'error' } };
}
