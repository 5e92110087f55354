import { createHmac } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CrmServer } from '../crm-server';
import { arrive, sameSecret, sendJson as send } from '../http-server';
import { isPlainObject, parseBody, type ParsedBody, type RawBody } from './body';
import { faultError, playFault } from './faults';
import { LeadStore, validateLead, type LeadQuery } from './store';
import type { CrmRoute, Fault, Lead, LoggedRequest, ReferenceCrm, ReferenceCrmAuth, ReferenceCrmOptions } from './types';

type Route = LoggedRequest['route'];

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

interface Incoming {
  route: Route;
  method: string;
  /** Decoded id from /crm/update/{id}. */
  pathId?: string;
  headers: IncomingMessage['headers'];
  /** The request target as sent: path and query, still percent-encoded. */
  target: string;
  query: Record<string, string>;
  raw: RawBody;
  parsed: ParsedBody | undefined;
}

const METHODS: Record<CrmRoute, string[]> = {
  create: ['POST'],
  fetch: ['GET', 'POST'],
  update: ['POST', 'PUT'],
  upsert: ['POST'],
};

const MASK = '***';

export async function startReferenceCrm(opts: ReferenceCrmOptions = {}): Promise<ReferenceCrm> {
  const crm = new ReferenceCrmServer(opts);
  await crm.listen(opts.host ?? '127.0.0.1', opts.port ?? 0);
  return crm;
}

class ReferenceCrmServer extends CrmServer implements ReferenceCrm {
  private readonly auth: ReferenceCrmAuth;
  private readonly basePath: string;
  private readonly maxBodyBytes: number;
  private readonly store: LeadStore;

  constructor(private readonly opts: ReferenceCrmOptions) {
    super(opts.seed ?? 0x5eed, (err) => ({ status: 500, body: { status: 'Internal Error', reason: String(err) } }));
    this.auth = opts.auth ?? { style: 'auth-key', key: 'test-key' };
    this.basePath = normalizeBasePath(opts.basePath ?? '');
    this.maxBodyBytes = opts.maxBodyBytes ?? 1024 * 1024;
    this.store = new LeadStore(opts.leadIdPrefix ?? 'L');
  }

  listen(host: string, port: number): Promise<void> {
    return this.server.listen(host, port, this.basePath);
  }

  leads(): Lead[] {
    return this.store.all();
  }

  editLead(id: string, patch: Parameters<ReferenceCrm['editLead']>[1]): void {
    const lead = this.store.get(id);
    if (!lead) throw new Error(`the reference CRM has no lead ${JSON.stringify(id)}`);
    this.store.update(lead, patch);
  }

  deleteLead(id: string): void {
    if (!this.store.delete(id)) throw new Error(`the reference CRM has no lead ${JSON.stringify(id)}`);
  }

  protected resetRecords(): void {
    this.store.reset();
  }

  protected async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrived = await arrive(req, this.maxBodyBytes);
    if (!arrived) return;
    const { url, method, raw } = arrived;

    const adminPath = this.adminPath(url.pathname);
    if (adminPath !== undefined) return send(res, this.admin(method, adminPath, raw));

    const { route, pathId } = this.matchRoute(url.pathname);
    const query = Object.fromEntries(url.searchParams);
    const parsed = raw.tooLarge ? undefined : parseBody(raw.buf, req.headers['content-type']);
    this.log.add({
      route, method, path: url.pathname, query: this.maskQuery(query), headers: this.maskHeaders(req.headers), body: this.maskBody(parsed),
    }, arrived, res);

    const fault = this.faults.take(route);
    const incoming: Incoming = { route, method, pathId, headers: req.headers, target: req.url ?? '/', query, raw, parsed };
    if (await playFault(fault, { server: this.server, req, res, failure: (status) => failure(incoming, status, 'injected') })) return;

    const reply = this.process(incoming);
    if (fault?.resetAfterCommit) return void req.socket.destroy();
    send(res, reply);
  }

  private process(inc: Incoming): Reply {
    const { route, method } = inc;
    if (route === 'unknown') return { status: 404, body: { status: 'Not Found', reason: 'No such route' } };
    if (!METHODS[route].includes(method)) {
      return {
        status: 405,
        body: { status: 'Method Not Allowed', reason: `${method} is not allowed here` },
        headers: { allow: METHODS[route].join(', ') },
      };
    }
    if (inc.raw.tooLarge) return failure(inc, 413, `Body larger than ${this.maxBodyBytes} bytes`);

    const authError = this.checkAuth(inc);
    if (authError) return { status: 401, body: { status: 'Unauthorized', reason: authError } };
    if (!inc.parsed!.ok) return failure(inc, 400, inc.parsed!.reason);

    const body = { ...inc.parsed!.value };
    if (this.auth.style === 'body-secret') delete body[this.auth.field ?? 'secret'];

    switch (route) {
      case 'create':
        return this.create(body);
      case 'fetch':
        return this.fetch({ ...inc.query, ...body });
      case 'update':
        return this.update(inc.pathId!, body);
      case 'upsert':
        return this.upsert(body);
    }
  }

  private create(body: Record<string, unknown>): Reply {
    const v = validateLead(body, 'create');
    if (!v.ok) return fail(400, 'Creation Failed', v.reason);
    const existing = this.opts.dedupeOnCreate ? this.store.find({ phone: v.patch.phone, email: v.patch.email ?? undefined }) : undefined;
    const lead = existing ? this.store.update(existing, v.patch) : this.store.create(v.patch);
    return ok(lead.lead_id, 'Successfully Created');
  }

  private fetch(params: Record<string, unknown>): Reply {
    const q: LeadQuery = {};
    for (const k of ['lead_id', 'phone', 'email'] as const) {
      if (typeof params[k] === 'string' && params[k] !== '') q[k] = params[k] as string;
    }
    if (!q.lead_id && !q.phone && !q.email) return fail(400, 'Fetch Failed', 'Provide at least one of phone, email, lead_id');
    const lag = this.opts.fetchLagMs ?? 0;
    const indexedBefore = Date.now() - lag;
    const lead = this.store.find(q, lag > 0 ? (l) => Date.parse(l.created_at) <= indexedBefore : undefined);
    if (!lead) return fail(404, 'Not Found', 'No matching lead');
    const lead_fields: Record<string, unknown> = { phone: lead.phone, name: lead.name };
    if (lead.email !== undefined) lead_fields.email = lead.email;
    lead_fields.custom_fields = structuredClone(lead.custom_fields);
    return { status: 200, body: { lead_id: lead.lead_id, lead_fields } };
  }

  private update(id: string, body: Record<string, unknown>): Reply {
    const lead = this.store.get(id);
    if (!lead) return fail(404, 'Update Failed', `No lead with id ${id}`);
    const v = validateLead(body, 'update');
    if (!v.ok) return fail(400, 'Update Failed', v.reason);
    this.store.update(lead, v.patch);
    return ok(lead.lead_id, 'Successfully Updated');
  }

  private upsert(body: Record<string, unknown>): Reply {
    if (typeof body.lead_id === 'string' && body.lead_id !== '') return this.update(body.lead_id, body);
    const match = this.store.find({
      phone: typeof body.phone === 'string' ? body.phone : undefined,
      email: typeof body.email === 'string' ? body.email : undefined,
    });
    return match ? this.update(match.lead_id, body) : this.create(body);
  }

  private checkAuth(inc: Incoming): string | undefined {
    const auth = this.auth;
    switch (auth.style) {
      case 'none':
        return undefined;
      case 'auth-key': {
        const name = auth.header ?? 'Auth-Key';
        return sameSecret(header(inc.headers, name), auth.key) ? undefined : `Missing or invalid ${name} header`;
      }
      case 'bearer': {
        const m = /^Bearer\s+(.+)$/i.exec(header(inc.headers, 'authorization') ?? '');
        return sameSecret(m?.[1]?.trim(), auth.key) ? undefined : 'Missing or invalid bearer token';
      }
      case 'body-secret': {
        const field = auth.field ?? 'secret';
        const fromBody = inc.parsed?.ok ? inc.parsed.value[field] : undefined;
        const given = fromBody !== undefined ? fromBody : inc.query[field];
        return sameSecret(given, auth.key) ? undefined : `Missing or invalid ${field}`;
      }
      case 'basic': {
        const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header(inc.headers, 'authorization') ?? '');
        const given = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : undefined;
        return sameSecret(given, `${auth.user ?? 'crm-sync'}:${auth.key}`) ? undefined : 'Missing or invalid basic credentials';
      }
      case 'hmac': {
        const sigHeader = auth.header ?? 'X-Signature';
        const tsHeader = auth.timestampHeader ?? 'X-Timestamp';
        const ts = header(inc.headers, tsHeader) ?? '';
        if (!/^\d+$/.test(ts)) return `Missing or invalid ${tsHeader} header`;
        if (Math.abs(Date.now() / 1000 - Number(ts)) > (auth.maxSkewSec ?? 300)) return `${tsHeader} is too far from the server's clock`;
        const text = `${ts}.${inc.method.toUpperCase()}.${inc.target}.${inc.raw.tooLarge ? '' : inc.raw.buf.toString('utf8')}`;
        const expected = `sha256=${createHmac('sha256', auth.key).update(text, 'utf8').digest('hex')}`;
        return sameSecret(header(inc.headers, sigHeader), expected) ? undefined : `Missing or invalid ${sigHeader} header`;
      }
    }
  }

  private matchRoute(path: string): { route: Route; pathId?: string } {
    if (!path.startsWith(`${this.basePath}/crm/`)) return { route: 'unknown' };
    const rest = path.slice(this.basePath.length + '/crm/'.length);
    if (rest === 'create') return { route: 'create' };
    if (rest === 'fetch' && this.opts.fetch !== false) return { route: 'fetch' };
    if (rest === 'upsert' && this.opts.upsert) return { route: 'upsert' };
    // An id containing '/' must arrive percent-encoded: a raw '/' is a different path.
    const m = /^update\/([^/]+)$/.exec(rest);
    if (m) {
      try {
        return { route: 'update', pathId: decodeURIComponent(m[1]!) };
      } catch {
        return { route: 'unknown' };
      }
    }
    return { route: 'unknown' };
  }

  private adminPath(path: string): string | undefined {
    for (const prefix of ['/_admin/', `${this.basePath}/_admin/`]) {
      if (path.startsWith(prefix)) return path.slice(prefix.length);
    }
    return undefined;
  }

  private admin(method: string, what: string, raw: RawBody): Reply {
    const done = (body: unknown): Reply => ({ status: 200, body });
    const key = `${method} ${what}`;
    switch (key) {
      case 'GET leads':
        return done(this.leads());
      case 'GET requests':
        return done(this.requests());
      case 'GET faults':
        return done(this.faults.list());
      case 'DELETE faults':
        this.clearFaults();
        return done({ cleared: true });
      case 'POST reset':
        this.reset();
        return done({ reset: true });
      case 'POST faults': {
        if (raw.tooLarge) return { status: 413, body: { status: 'Failed', reason: 'Body too large' } };
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw.buf.toString('utf8'));
        } catch (err) {
          return { status: 400, body: { status: 'Failed', reason: `Invalid JSON body: ${(err as Error).message}` } };
        }
        const list = Array.isArray(parsed) ? parsed : [parsed];
        for (const f of list) {
          const err = faultError(f);
          if (err) return { status: 400, body: { status: 'Failed', reason: err } };
        }
        for (const f of list) this.addFault(f as Fault);
        return done({ added: list.length });
      }
    }
    // Changes made behind crm-sync's back, for trying reconcile by hand: PATCH a lead's fields, DELETE a lead.
    const one = /^leads\/([^/]+)$/.exec(what);
    if (one && (method === 'PATCH' || method === 'DELETE')) {
      const id = decodeURIComponent(one[1]!);
      if (!this.store.get(id)) return { status: 404, body: { status: 'Not Found', reason: `No lead ${JSON.stringify(id)}` } };
      if (method === 'DELETE') {
        this.deleteLead(id);
        return done({ deleted: id });
      }
      let patch: unknown;
      try {
        patch = raw.tooLarge ? undefined : JSON.parse(raw.buf.toString('utf8'));
      } catch {
        patch = undefined;
      }
      const fields = ['phone', 'name', 'email', 'custom_fields'];
      if (typeof patch !== 'object' || patch === null || Array.isArray(patch) || Object.keys(patch).some((k) => !fields.includes(k))) {
        return { status: 400, body: { status: 'Failed', reason: `The body must be a JSON object of ${fields.join(', ')}` } };
      }
      this.editLead(id, patch as Parameters<ReferenceCrm['editLead']>[1]);
      return done(this.store.get(id));
    }
    if (['leads', 'requests', 'faults', 'reset'].includes(what) || one) {
      return { status: 405, body: { status: 'Method Not Allowed', reason: `${method} is not allowed here` } };
    }
    return { status: 404, body: { status: 'Not Found', reason: 'No such admin route' } };
  }

  private maskHeaders(headers: IncomingMessage['headers']): Record<string, string> {
    const secret = new Set(['authorization']);
    if (this.auth.style === 'auth-key') secret.add((this.auth.header ?? 'Auth-Key').toLowerCase());
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) {
      if (v === undefined) continue;
      out[k] = secret.has(k) ? MASK : Array.isArray(v) ? v.join(', ') : v;
    }
    return out;
  }

  private maskQuery(query: Record<string, string>): Record<string, string> {
    if (this.auth.style !== 'body-secret') return { ...query };
    const field = this.auth.field ?? 'secret';
    return field in query ? { ...query, [field]: MASK } : { ...query };
  }

  private maskBody(parsed: ParsedBody | undefined): unknown {
    if (!parsed) return null;
    if (!parsed.ok) return parsed.raw;
    const body = structuredClone(parsed.value);
    if (this.auth.style === 'body-secret') {
      const field = this.auth.field ?? 'secret';
      if (field in body) body[field] = MASK;
    }
    return body;
  }
}

function ok(leadId: string, status: string): Reply {
  return { status: 200, body: { lead_id: leadId, status } };
}

function fail(status: number, label: string, reason: string): Reply {
  return { status, body: { status: label, reason } };
}

/** The contract's failure label for a route, for faults and generic errors. */
function failure(inc: Incoming, status: number, reason: string): Reply {
  let label: string;
  switch (inc.route) {
    case 'create':
      label = 'Creation Failed';
      break;
    case 'update':
      label = 'Update Failed';
      break;
    case 'fetch':
      label = 'Fetch Failed';
      break;
    case 'upsert':
      label = inc.parsed?.ok && isPlainObject(inc.parsed.value) && inc.parsed.value.lead_id ? 'Update Failed' : 'Creation Failed';
      break;
    default:
      label = 'Failed';
  }
  return fail(status, label, reason);
}

function header(headers: IncomingMessage['headers'], name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

function normalizeBasePath(p: string): string {
  const trimmed = p.replace(/\/+$/, '');
  return trimmed === '' || trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}
