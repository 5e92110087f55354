import { randomBytes, randomInt } from 'node:crypto';
import { toContact, type Contact } from '@crm-sync/core';

/** The attribute that marks a lead as made by `crm-sync verify`, so a person can find and delete it. */
export const TEST_MARK = 'crm_sync_test';

export interface TestContacts {
  /** The contact created in step 1: name, email and phone all say "test". */
  created: Contact;
  /** The same contact renamed: what step 4 sends as the update. */
  renamed: Contact;
  /**
   * A second phone from the same fictional range: "fetch by email" sends it, so for a fetch endpoint that is given
   * every key at once only the email can match (a contact whose phone changed).
   */
  otherPhone: string;
}

/** A phone in the +1 202 555 01xx range reserved for fiction: possible for libphonenumber, never a real person's. */
function fictionalPhone(): string {
  return `+1202555${String(100 + randomInt(100)).padStart(4, '0')}`;
}

/**
 * A fresh, clearly marked test contact; random parts keep runs against the same CRM apart. `tenant` is the tenant it
 * belongs to, for a mapping whose URLs or payload use `tenant` (default `crm-sync-verify`).
 */
export function makeTestContacts(now: Date = new Date(), tenant = 'crm-sync-verify'): TestContacts {
  const token = randomBytes(4).toString('hex');
  const stamp = now.toISOString().replace(/\.\d+Z$/, 'Z');
  const phone = fictionalPhone();
  let otherPhone = fictionalPhone();
  while (otherPhone === phone) otherPhone = fictionalPhone();
  const event = {
    tenant,
    contactId: `crm-sync-verify-${token}`,
    phone,
    email: `crm-sync-verify+${token}@example.com`,
    name: `crm-sync verify ${stamp}`,
    attributes: { [TEST_MARK]: true },
  };
  // Through the platform's own validation: the test contact is one the runner would accept.
  return {
    created: toContact(event),
    renamed: toContact({ ...event, name: `${event.name} updated` }),
    otherPhone,
  };
}
