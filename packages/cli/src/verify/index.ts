export { verifyMapping, type VerifyOptions, type VerifyReport, type StepReport, type StepOutcome } from './verifier';
export { formatVerifyReport } from './report';
export { decideTarget, isLoopbackHost, type TargetDecision } from './target';
export { makeTestContacts, TEST_MARK, type TestContacts } from './test-contact';
export type { Exchange } from './recording-client';
