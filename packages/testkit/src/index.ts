export { startReferenceCrm, parseForm } from './reference-crm';
export type { CrmRoute, Fault, Lead, LoggedRequest, ReferenceCrm, ReferenceCrmAuth, ReferenceCrmOptions } from './reference-crm';
export * from './suites';
