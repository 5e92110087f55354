export { main } from './main';
export { EXIT, UsageError, type Command, type CommandIO } from './command';
export { verifyMapping, formatVerifyReport, type VerifyOptions, type VerifyReport } from './verify';
