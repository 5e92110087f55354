export { startReferenceCrm, parseForm } from './reference-crm';
export type { CrmRoute, CrmTestServer, Fault, Lead, LoggedRequest, ReferenceCrm, ReferenceCrmAuth, ReferenceCrmOptions } from './reference-crm';
export * from './suites';
// Vendor emulators (HubSpot, Zoho, Pipedrive, Salesforce, a legacy form CRM): one API, see emulators/base.ts.
export * from './emulators';
// Generated contact-event streams (bursts, redeliveries, out-of-order, bad events) and the check of the CRM's leads.
export * from './stream';
export { prng } from './prng';
// A real redis-server on a free port for the scale-out tests and benchmarks.
export { RedisServer, redisServerAvailable, describeWithRedis, type RedisServerOptions } from './redis-server';
export { startOAuthServer, type OAuthServer, type OAuthServerOptions, type TokenRequestLog } from './oauth-server';
