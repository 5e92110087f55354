export { registerBuiltinAdapters, loadPlugins } from './builtins';
