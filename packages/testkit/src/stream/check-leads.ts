import type { Lead } from '../reference-crm';
import type { ContactState } from './contact-stream';

/** What the CRM holds compared with every contact's final state. All zero (and no problems) is a pass. */
export interface LeadCheck {
  /** Contacts with more than one lead for their phone (each counted once). */
  duplicates: number;
  /** Contacts with no lead at all: a lost change. */
  missing: number;
  /** Contacts whose one lead differs from their final state: a lost (or stale) change. */
  mismatched: number;
  /** Leads whose phone belongs to no contact of the stream. */
  unexpected: number;
  /** One line per problem, naming the contact and what differs. */
  problems: string[];
}

/** One lead per contact's phone, every field (phone, name, email, custom_fields = attributes) equal to its final state. */
export function checkLeads(leads: readonly Lead[], expected: ReadonlyMap<string, ContactState>): LeadCheck {
  const check: LeadCheck = { duplicates: 0, missing: 0, mismatched: 0, unexpected: 0, problems: [] };
  const byPhone = new Map<string, Lead[]>();
  for (const l of leads) byPhone.set(l.phone, [...(byPhone.get(l.phone) ?? []), l]);
  for (const c of expected.values()) {
    const found = byPhone.get(c.phone) ?? [];
    byPhone.delete(c.phone);
    if (found.length !== 1) {
      if (found.length === 0) check.missing++;
      else check.duplicates++;
      check.problems.push(`${c.contactId}: ${found.length} leads for ${c.phone}, expected 1`);
      continue;
    }
    const lead = found[0]!;
    const want = { phone: c.phone, name: c.name, email: c.email, custom_fields: c.attributes };
    const got = { phone: lead.phone, name: lead.name, email: lead.email, custom_fields: lead.custom_fields };
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      check.mismatched++;
      check.problems.push(`${c.contactId}: lead ${lead.lead_id} is ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
    }
  }
  for (const [phone, stray] of byPhone) {
    check.unexpected += stray.length;
    check.problems.push(`${stray.length} lead(s) for ${phone}, which no contact has`);
  }
  return check;
}
