import { compileMapping, ConfigError, loadMappingFile, type CompiledMapping } from '@crm-sync/core';
import { loadPlugins } from '@crm-sync/runner';

/** `--plugin <module>`: every command that compiles a mapping accepts third-party adapter packages. */
export const PLUGIN_OPTION = { plugin: { type: 'string', multiple: true } } as const;
export const PLUGIN_HELP = `  --plugin <module>       Load third-party adapters from this package (resolved from the
                          working directory); repeatable.`;

/** Registers the adapters exported by each plug-in package. A module that cannot be loaded names itself and why. */
export function loadPluginModules(names: readonly string[]): void {
  for (const name of names) {
    try {
      loadPlugins([name]);
    } catch (err) {
      // require's message lists the whole require stack: its first line says what is missing.
      const why = (err as Error)?.message?.split('\n')[0] ?? String(err);
      throw new ConfigError(`cannot load plugin ${JSON.stringify(name)}: ${why}`, err instanceof ConfigError ? err.code : 'ERR_PLUGIN');
    }
  }
}

/** Reads, validates and compiles a mapping file (adapters resolved). Throws a MappingError naming the file and path. */
export function compileMappingFile(path: string): CompiledMapping {
  const { text } = loadMappingFile(path);
  return compileMapping(text, { file: path });
}
