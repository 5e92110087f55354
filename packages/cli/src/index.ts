export { main } from './main';
export { EXIT, UsageError, type Command, type CommandIO } from './command';
