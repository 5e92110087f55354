export { planStream, sliceStream, countKinds, MAX_STREAM_CONTACTS, type ContactState, type ContactStream, type PlannedEvent, type PlannedKind, type StreamOptions } from './contact-stream';
export { checkLeads, type LeadCheck } from './check-leads';
