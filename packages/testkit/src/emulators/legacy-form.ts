import type { CrmRoute } from '../reference-crm/types';
import { isPlainObject } from '../reference-crm/body';
import { sameSecret, startEmulator, type Emulator, type EmulatorOptions, type EmulatorRequest, type Reply, type RouteMatch, type VendorApi } from './base';

/**
 * A legacy form CRM of the kind small businesses still run (a PHP gateway): one URL, `/gateway.php?action=create|
 * find|update`, form-encoded bodies only, the secret in the body (`api_key`), phones as digits without `+`, extra
 * fields as `fields[name]=value`, and HTTP 200 for every outcome (sent as text/html): `{"result":"ok","id":…}`,
 * `{"result":"not_found"}`, `{"result":"error","message":…}`. An update of an unknown id answers not_found.
 */

export interface LegacyFormRecord {
  id: string;
  name: string;
  phone: string;
  email?: string;
  fields: Record<string, string>;
}

export type LegacyFormCrmOptions = EmulatorOptions;

const ACTIONS: Record<string, CrmRoute> = { create: 'create', find: 'fetch', update: 'update' };
const DIGITS = /^[1-9]\d{6,14}$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const SECRET_FIELD = 'api_key';

export async function startLegacyFormCrm(opts: LegacyFormCrmOptions = {}): Promise<Emulator<LegacyFormRecord>> {
  const api = new LegacyFormApi(opts);
  return startEmulator(api, opts);
}

class LegacyFormApi implements VendorApi<LegacyFormRecord> {
  readonly token: string;
  private list: Array<LegacyFormRecord & { deleted: boolean }> = [];
  private nextId = 5001;

  constructor(opts: LegacyFormCrmOptions) {
    this.token = opts.token ?? 'legacy-test-key';
  }

  match(method: string, url: URL): RouteMatch | undefined {
    if (url.pathname !== '/gateway.php' || method !== 'POST') return undefined;
    const route = ACTIONS[url.searchParams.get('action') ?? ''];
    return route ? { route } : undefined;
  }

  handle(req: EmulatorRequest): Reply {
    if (req.contentType !== 'application/x-www-form-urlencoded' || !req.body.ok) {
      return failed('expected form data (application/x-www-form-urlencoded)');
    }
    const form = req.body.value;
    if (!sameSecret(form[SECRET_FIELD], this.token)) return failed('access denied');
    if (req.route === 'fetch') return this.find(form);
    if (req.route === 'create') {
      const record = { id: String(this.nextId++), name: '', phone: '', fields: {}, deleted: false };
      const bad = apply(record, form, true);
      if (bad) return failed(bad);
      this.list.push(record);
      return ok(record.id);
    }
    const record = this.live().find((r) => r.id === form.id);
    if (!record) return { status: 200, body: { result: 'not_found' }, contentType: HTML };
    const bad = apply(record, form, false);
    return bad ? failed(bad) : ok(record.id);
  }

  private find(form: Record<string, unknown>): Reply {
    const { phone, email } = form;
    if (!phone && !email) return failed('find needs phone or email');
    const hit = this.live().find((r) => (phone ? r.phone === phone : String(r.email).toLowerCase() === String(email).toLowerCase()));
    return hit ? ok(hit.id) : { status: 200, body: { result: 'not_found' }, contentType: HTML };
  }

  private live() {
    return this.list.filter((r) => !r.deleted);
  }

  unknownRoute(): Reply {
    return failed('unknown action');
  }

  failure(route: CrmRoute | 'unknown', status: number, message: string): Reply {
    return { status, body: { result: 'error', message }, contentType: HTML };
  }

  records(): LegacyFormRecord[] {
    return this.live().map(({ deleted: _deleted, ...r }) => structuredClone(r));
  }

  deleteRecord(id: string): boolean {
    const r = this.live().find((x) => x.id === id);
    if (r) r.deleted = true;
    return Boolean(r);
  }

  reset(): void {
    this.list = [];
    this.nextId = 5001;
  }
}

// The gateway answers JSON with PHP's default content type.
const HTML = 'text/html; charset=UTF-8';

function ok(id: string): Reply {
  return { status: 200, body: { result: 'ok', id }, contentType: HTML };
}

function failed(message: string): Reply {
  return { status: 200, body: { result: 'error', message }, contentType: HTML };
}

/** Form values are strings; an empty value clears an optional field. Returns the reason a form is refused. */
function apply(record: LegacyFormRecord, form: Record<string, unknown>, creating: boolean): string | undefined {
  const { name, phone, email, fields } = form;
  if (creating && (typeof name !== 'string' || name.trim() === '')) return 'name is required';
  if (creating && (typeof phone !== 'string' || phone === '')) return 'phone is required';
  if (typeof phone === 'string' && phone !== '' && !DIGITS.test(phone)) return `phone must be digits only with the country code, no +: ${phone}`;
  if (typeof email === 'string' && email !== '' && !EMAIL.test(email)) return `invalid email: ${email}`;
  if (typeof name === 'string' && name.trim() !== '') record.name = name;
  if (typeof phone === 'string' && phone !== '') record.phone = phone;
  if (email === '') delete record.email;
  else if (typeof email === 'string') record.email = email;
  if (isPlainObject(fields)) {
    for (const [k, v] of Object.entries(fields)) {
      if (v === '') delete record.fields[k];
      else record.fields[k] = String(v);
    }
  }
  return undefined;
}
