export { runAuthAdapterSuite, type AuthSuiteCase, type AuthSuiteOptions, type BodyKind } from './auth-suite';
export { runFlowAdapterSuite, type FlowSuiteOptions } from './flow-suite';
export { credentialContext, type CredentialContextOptions, type TestCredentialContext } from './credential-context';
export { RecordingFlowOperations, RECORDED_IDS, type FlowOperationName, type RecordedOperation, type RecordingFlowOperationsOptions } from './recording-flow-operations';
export type { TestApi } from './test-api';
