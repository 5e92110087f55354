export { startReferenceCrm } from './server';
export { parseForm } from './body';
export type { CrmRoute, CrmTestServer, Fault, Lead, LoggedRequest, ReferenceCrm, ReferenceCrmAuth, ReferenceCrmOptions } from './types';
