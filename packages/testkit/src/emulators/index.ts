export type { Emulator, EmulatorOptions } from './base';
export { startHubSpotEmulator, type HubSpotContact, type HubSpotEmulator, type HubSpotEmulatorOptions } from './hubspot';
export { startZohoEmulator, type ZohoLead, type ZohoEmulatorOptions } from './zoho';
export { startPipedriveEmulator, type PipedrivePerson, type PipedriveContactValue, type PipedriveEmulatorOptions } from './pipedrive';
export { startSalesforceEmulator, type SalesforceLead, type SalesforceEmulatorOptions } from './salesforce';
export { startLegacyFormCrm, type LegacyFormRecord, type LegacyFormCrmOptions } from './legacy-form';
export { parseSoql, SoqlError, type SoqlQuery } from './soql';
