import { isPlainObject, UNSAFE_KEYS } from './body';
import type { Lead } from './types';

const E164 = /^\+[1-9]\d{6,14}$/;
// Deliberately loose: the CRM only refuses what is clearly not an address.
const EMAIL = /^[^\s@]+@[^\s@]+$/;

/** A validated create/update payload. `email: null` removes the email. */
export interface LeadPatch {
  phone?: string;
  name?: string;
  email?: string | null;
  custom_fields?: Record<string, unknown>;
}

export type Validated = { ok: true; patch: LeadPatch } | { ok: false; reason: string };

/** On create phone and name are required; on update every field is optional. */
export function validateLead(body: Record<string, unknown>, mode: 'create' | 'update'): Validated {
  const patch: LeadPatch = {};
  const fail = (reason: string): Validated => ({ ok: false, reason });

  const { phone, name, email, custom_fields } = body;
  if (phone === undefined || phone === '') {
    if (mode === 'create') return fail('phone is required');
  } else if (typeof phone !== 'string') {
    return fail('phone must be a string');
  } else if (!E164.test(phone)) {
    return fail(`phone "${phone}" is not in E.164 format (e.g. +919876543210)`);
  } else {
    patch.phone = phone;
  }

  if (name === undefined) {
    if (mode === 'create') return fail('name is required');
  } else if (typeof name !== 'string' || name.trim() === '') {
    return fail('name must be a non-empty string');
  } else {
    patch.name = name;
  }

  if (email === null || email === '') {
    if (mode === 'update') patch.email = null;
  } else if (email !== undefined) {
    if (typeof email !== 'string') return fail('email must be a string');
    if (!EMAIL.test(email)) return fail(`email "${email}" is not a valid address`);
    patch.email = email;
  }

  if (custom_fields !== undefined) {
    if (!isPlainObject(custom_fields)) return fail('custom_fields must be an object');
    patch.custom_fields = custom_fields;
  }
  return { ok: true, patch };
}

export interface LeadQuery {
  lead_id?: string;
  phone?: string;
  email?: string;
}

export class LeadStore {
  private list: Lead[] = [];
  private byId = new Map<string, Lead>();
  private counter = 0;

  constructor(private readonly idPrefix: string) {}

  all(): Lead[] {
    return this.list.map((l) => structuredClone(l));
  }

  get(id: string): Lead | undefined {
    return this.byId.get(id);
  }

  /** lead_id first, then phone, then email; the oldest lead wins. `visible` hides leads (search lag). */
  find(q: LeadQuery, visible: (l: Lead) => boolean = () => true): Lead | undefined {
    if (q.lead_id) {
      const hit = this.byId.get(q.lead_id);
      if (hit && visible(hit)) return hit;
    }
    if (q.phone) {
      const hit = this.list.find((l) => l.phone === q.phone && visible(l));
      if (hit) return hit;
    }
    if (q.email) {
      const wanted = q.email.toLowerCase();
      return this.list.find((l) => l.email?.toLowerCase() === wanted && visible(l));
    }
    return undefined;
  }

  create(patch: LeadPatch): Lead {
    const now = new Date().toISOString();
    const lead: Lead = {
      lead_id: `${this.idPrefix}${String(++this.counter).padStart(6, '0')}`,
      phone: patch.phone!,
      name: patch.name!,
      custom_fields: mergeFields({}, patch.custom_fields),
      created_at: now,
      updated_at: now,
      version: 1,
    };
    if (patch.email) lead.email = patch.email;
    this.list.push(lead);
    this.byId.set(lead.lead_id, lead);
    return lead;
  }

  /** Top-level fields replace; custom_fields merge key by key. */
  update(lead: Lead, patch: LeadPatch): Lead {
    if (patch.phone !== undefined) lead.phone = patch.phone;
    if (patch.name !== undefined) lead.name = patch.name;
    if (patch.email === null) delete lead.email;
    else if (patch.email !== undefined) lead.email = patch.email;
    lead.custom_fields = mergeFields(lead.custom_fields, patch.custom_fields);
    lead.updated_at = new Date().toISOString();
    lead.version++;
    return lead;
  }

  /** Removes a lead, as a CRM user deleting it. False: no such lead. */
  delete(id: string): boolean {
    const lead = this.byId.get(id);
    if (!lead) return false;
    this.byId.delete(id);
    this.list = this.list.filter((l) => l !== lead);
    return true;
  }

  reset(): void {
    this.list = [];
    this.byId.clear();
    this.counter = 0;
  }
}

/** null or "" removes a key: that is how a mapping clears a CRM field. */
function mergeFields(base: Record<string, unknown>, changes: Record<string, unknown> | undefined): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(changes ?? {})) {
    if (UNSAFE_KEYS.has(k)) continue;
    if (v === null || v === '') delete out[k];
    else out[k] = structuredClone(v);
  }
  return out;
}
