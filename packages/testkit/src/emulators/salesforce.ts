import type { CrmRoute } from '../reference-crm/types';
import {
  authorizationToken, isoTime, sameSecret, startEmulator,
  type Emulator, type EmulatorOptions, type EmulatorRequest, type Reply, type RouteMatch, type VendorApi,
} from './base';
import { parseSoql, SoqlError } from './soql';

/**
 * Salesforce REST API Leads, as developer.salesforce.com (REST API Developer Guide) documents them: Bearer auth,
 * POST /services/data/vXX.X/sobjects/Lead → 201 {id, success, errors}, GET …/query?q=SOQL → {totalSize, done,
 * records}, PATCH …/sobjects/Lead/{id} → 204 with no body, errors as arrays of {message, errorCode, fields},
 * LastName and Company required (REQUIRED_FIELD_MISSING), 404 ENTITY_IS_DELETED / NOT_FOUND for deleted or unknown
 * ids, `Sforce-Limit-Info: api-usage=N/LIMIT` on every answer and 403 REQUEST_LIMIT_EXCEEDED past the limit.
 */

export type SalesforceLead = Record<string, unknown> & { attributes: { type: 'Lead'; url: string }; Id: string };

export interface SalesforceEmulatorOptions extends EmulatorOptions {
  /** The org's API request allowance, reported in Sforce-Limit-Info. Default 15000. */
  apiLimit?: number;
  /** Custom Lead fields the org has (API names ending in __c). Default ['UTM_Campaign__c']. */
  customFields?: string[];
}

const API = /^\/services\/data\/(v\d+\.\d)\/(.*)$/;
// Field and object names are case-insensitive in SOQL and in sObject bodies.
const STANDARD_FIELDS = new Set([
  'Id', 'FirstName', 'LastName', 'Salutation', 'Company', 'Title', 'Email', 'Phone', 'MobilePhone', 'LeadSource', 'Status',
  'Street', 'City', 'State', 'PostalCode', 'Country', 'Website', 'Description', 'Industry', 'Rating', 'HasOptedOutOfEmail',
  'CreatedDate', 'LastModifiedDate', 'IsDeleted',
]);
const READ_ONLY = new Set(['Id', 'CreatedDate', 'LastModifiedDate', 'IsDeleted']);
const REQUIRED = ['LastName', 'Company'];
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

interface StoredLead {
  fields: Record<string, unknown>;
  created: number;
  deleted: boolean;
}

interface SfError {
  message: string;
  errorCode: string;
  fields?: string[];
}

export async function startSalesforceEmulator(opts: SalesforceEmulatorOptions = {}): Promise<Emulator<SalesforceLead>> {
  const api = new SalesforceApi(opts);
  return startEmulator(api, opts);
}

class SalesforceApi implements VendorApi<SalesforceLead> {
  readonly token: string;
  private readonly now: () => number;
  private readonly apiLimit: number;
  private leads: StoredLead[] = [];
  private seq = 0;
  private apiUsage = 0;
  private version = 'v59.0';
  /** Lower-cased API name → the API name, for every field the org's Lead has. */
  private readonly fieldNames: Map<string, string>;

  constructor(opts: SalesforceEmulatorOptions) {
    this.token = opts.token ?? 'salesforce-test-token';
    this.now = opts.now ?? Date.now;
    this.apiLimit = opts.apiLimit ?? 15_000;
    this.fieldNames = new Map([...STANDARD_FIELDS, ...(opts.customFields ?? ['UTM_Campaign__c'])].map((f) => [f.toLowerCase(), f]));
  }

  match(method: string, url: URL): RouteMatch | undefined {
    const m = API.exec(url.pathname);
    if (!m) return undefined;
    const rest = m[2]!.replace(/\/+$/, '');
    if (rest === 'query' && method === 'GET') return { route: 'fetch', params: { version: m[1]! } };
    if (rest === 'sobjects/Lead' && method === 'POST') return { route: 'create', params: { version: m[1]! } };
    const id = /^sobjects\/Lead\/([^/]+)$/.exec(rest)?.[1];
    if (id && method === 'PATCH') {
      try {
        return { route: 'update', params: { version: m[1]!, id: decodeURIComponent(id) } };
      } catch {
        return undefined;
      }
    }
    return undefined;
  }

  handle(req: EmulatorRequest): Reply {
    this.version = req.params.version ?? this.version;
    if (!sameSecret(authorizationToken(req, 'Bearer'), this.token)) return errors(401, [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);
    this.apiUsage++;
    const reply = this.apiUsage > this.apiLimit
      ? errors(403, [{ message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }])
      : this.dispatch(req);
    reply.headers = { 'Sforce-Limit-Info': `api-usage=${Math.min(this.apiUsage, this.apiLimit)}/${this.apiLimit}`, ...reply.headers };
    return reply;
  }

  private dispatch(req: EmulatorRequest): Reply {
    if (req.route === 'fetch') return this.query(req.query.get('q'));
    if (!req.body.ok || req.contentType !== 'application/json') {
      return errors(400, [{ message: req.body.ok ? `Unsupported Content-Type ${req.contentType || '(none)'}` : 'Unexpected character in the JSON body', errorCode: 'JSON_PARSER_ERROR' }]);
    }
    const named = this.canonicalBody(req.body.value);
    if (!named.ok) return errors(400, [named.error]);
    const { body } = named;
    if (req.route === 'create') {
      const missing = REQUIRED.filter((f) => body[f] === undefined || body[f] === null || body[f] === '');
      if (missing.length > 0) return errors(400, [{ message: `Required fields are missing: [${missing.join(', ')}]`, errorCode: 'REQUIRED_FIELD_MISSING', fields: missing }]);
      const t = this.now();
      const id = `00Q${String(++this.seq).padStart(12, '0')}AAA`;
      const lead: StoredLead = { fields: { Id: id, CreatedDate: isoTime(t), LastModifiedDate: isoTime(t), IsDeleted: false }, created: t, deleted: false };
      assign(lead, body);
      this.leads.push(lead);
      return { status: 201, body: { id, success: true, errors: [] } };
    }
    const lead = this.leads.find((l) => l.fields.Id === req.params.id);
    if (!lead) return errors(404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    if (lead.deleted) return errors(404, [{ errorCode: 'ENTITY_IS_DELETED', message: 'entity is deleted', fields: [] }]);
    const cleared = REQUIRED.filter((f) => f in body && (body[f] === null || body[f] === ''));
    if (cleared.length > 0) return errors(400, [{ message: `Required fields are missing: [${cleared.join(', ')}]`, errorCode: 'REQUIRED_FIELD_MISSING', fields: cleared }]);
    assign(lead, body);
    lead.fields.LastModifiedDate = isoTime(this.now());
    return { status: 204 };
  }

  /** The body with every key as the field's API name, or the error Salesforce gives for it. */
  private canonicalBody(body: Record<string, unknown>): { ok: true; body: Record<string, unknown> } | { ok: false; error: SfError } {
    const out: Record<string, unknown> = {};
    for (const [given, v] of Object.entries(body)) {
      const k = this.fieldNames.get(given.toLowerCase());
      if (!k) return { ok: false, error: { message: `No such column '${given}' on sobject of type Lead`, errorCode: 'INVALID_FIELD', fields: [] } };
      if (READ_ONLY.has(k)) {
        return { ok: false, error: { message: `Unable to create/update fields: ${k}. Please check the security settings of this field.`, errorCode: 'INVALID_FIELD_FOR_INSERT_UPDATE', fields: [k] } };
      }
      if (k === 'Email' && v !== null && v !== '' && !(typeof v === 'string' && EMAIL.test(v))) {
        return { ok: false, error: { message: `Email: invalid email address: ${String(v)}`, errorCode: 'INVALID_EMAIL_ADDRESS', fields: ['Email'] } };
      }
      out[k] = v;
    }
    return { ok: true, body: out };
  }

  private query(q: string | null): Reply {
    if (!q) return errors(400, [{ message: 'A query string has to be specified', errorCode: 'MALFORMED_QUERY' }]);
    let parsed;
    try {
      parsed = parseSoql(q);
    } catch (err) {
      if (err instanceof SoqlError) return errors(400, [{ message: `\n${q}\n${err.message}`, errorCode: 'MALFORMED_QUERY' }]);
      throw err;
    }
    if (parsed.object.toLowerCase() !== 'lead') return errors(400, [{ message: `sObject type '${parsed.object}' is not supported.`, errorCode: 'INVALID_TYPE' }]);
    const named = [...parsed.fields, parsed.where.field, ...(parsed.orderBy ? [parsed.orderBy.field] : [])];
    const unknown = named.find((f) => !this.fieldNames.has(f.toLowerCase()));
    if (unknown) return errors(400, [{ message: `No such column '${unknown}' on entity 'Lead'.`, errorCode: 'INVALID_FIELD' }]);
    const field = (f: string) => this.fieldNames.get(f.toLowerCase())!;
    // Text comparison in SOQL ignores case.
    const wanted = parsed.where.value.toLowerCase();
    const where = field(parsed.where.field);
    let hits = this.leads.filter((l) => !l.deleted && String(l.fields[where] ?? '').toLowerCase() === wanted);
    if (parsed.orderBy) {
      const by = field(parsed.orderBy.field);
      const dir = parsed.orderBy.descending ? -1 : 1;
      hits = [...hits].sort((a, b) => dir * (String(a.fields[by] ?? '').localeCompare(String(b.fields[by] ?? '')) || a.created - b.created));
    }
    if (parsed.limit !== undefined) hits = hits.slice(0, parsed.limit);
    const records = hits.map((l) => ({ attributes: this.attributes(l), ...Object.fromEntries(parsed.fields.map((f) => [field(f), l.fields[field(f)] ?? null])) }));
    return { status: 200, body: { totalSize: records.length, done: true, records } };
  }

  private attributes(l: StoredLead): SalesforceLead['attributes'] {
    return { type: 'Lead', url: `/services/data/${this.version}/sobjects/Lead/${String(l.fields.Id)}` };
  }

  unknownRoute(): Reply {
    return errors(404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
  }

  failure(route: CrmRoute | 'unknown', status: number, message: string): Reply {
    // A save that fails inside a 2xx answer is a SaveResult with success: false.
    if (status < 300) return { status, body: { id: null, success: false, errors: [{ statusCode: 'UNKNOWN_EXCEPTION', message, fields: [] }] } };
    const code = status === 401 ? 'INVALID_SESSION_ID' : status === 403 || status === 429 ? 'REQUEST_LIMIT_EXCEEDED'
      : status === 404 ? 'NOT_FOUND' : status === 413 ? 'REQUEST_TOO_LARGE' : status >= 500 ? 'UNKNOWN_EXCEPTION' : 'INVALID_INPUT';
    return errors(status, [{ message, errorCode: code }]);
  }

  records(): SalesforceLead[] {
    return this.leads.filter((l) => !l.deleted).map((l) => ({ attributes: this.attributes(l), ...structuredClone(l.fields) }) as SalesforceLead);
  }

  deleteRecord(id: string): boolean {
    const l = this.leads.find((x) => x.fields.Id === id && !x.deleted);
    if (l) {
      l.deleted = true;
      l.fields.IsDeleted = true;
    }
    return Boolean(l);
  }

  reset(): void {
    this.leads = [];
    this.seq = 0;
    this.apiUsage = 0;
  }
}

/** null clears a field, as PATCH does in Salesforce. */
function assign(lead: StoredLead, body: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(body)) {
    if (v === null) delete lead.fields[k];
    else lead.fields[k] = v;
  }
}

function errors(status: number, list: SfError[]): Reply {
  return { status, body: list };
}
