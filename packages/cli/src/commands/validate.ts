import { checkExamples, MappingError, type CompiledMapping } from '@crm-sync/core';
import { listOption } from '../args';
import { EXIT, UsageError, type Command, type CommandIO } from '../command';
import { compileMappingFile, loadPluginModules, PLUGIN_HELP, PLUGIN_OPTION } from '../mapping-file';

/** Checks one file; prints `ok` to stdout or each problem to stderr. True when it passes. */
async function validateFile(file: string, io: CommandIO): Promise<boolean> {
  let mapping: CompiledMapping;
  try {
    mapping = compileMappingFile(file);
  } catch (err) {
    if (!(err instanceof MappingError)) throw err;
    io.err([`FAIL ${file} (${err.code})`, ...err.errors.map((e) => `  ${e.field}: ${e.message}`)].join('\n'));
    return false;
  }
  const count = mapping.definition.examples?.length ?? 0;
  const failures = await checkExamples(mapping);
  if (failures.length === 0) {
    // Compiling finds mistakes in any template or expression; only examples show that the requests are the right ones.
    io.out(`ok ${file} (${count} example${count === 1 ? '' : 's'}${count === 0 ? ': add some, so the requests themselves are checked (docs/writing-a-mapping.md, "Examples are golden tests")' : ''})`);
    return true;
  }
  io.err([
    `FAIL ${file}: ${failures.length} of ${count} example${count === 1 ? '' : 's'} failed`,
    ...failures.flatMap((f) => [`  ${f.example}`, ...f.problems.map((p) => `    ${p}`)]),
  ].join('\n'));
  return false;
}

export const validate: Command = {
  name: 'validate',
  summary: 'Check mapping files: schema, expressions, adapters, and their golden examples (offline).',
  help: `Usage: crm-sync validate [options] <mapping>...

Checks each mapping file (YAML or JSON) without sending anything: validates it against the
mapping JSON Schema, compiles its JSONata expressions and Handlebars templates, resolves its
adapters, then runs its golden examples against canned CRM answers.

Prints "ok <file> (N examples)" per good file; for a bad one, the file, the path inside it and
what was expected, or each failing example with every difference.

Arguments:
  <mapping>...            One or more mapping files.

Options:
${PLUGIN_HELP}
  -h, --help              Show this help.

Exit status: 0 all files pass, 1 any file fails, 2 usage error.`,
  options: { ...PLUGIN_OPTION },
  async run({ values, positionals }, io) {
    if (positionals.length === 0) throw new UsageError('missing <mapping>: name at least one mapping file');
    loadPluginModules(listOption(values, 'plugin'));
    let allPass = true;
    for (const file of positionals) allPass = (await validateFile(file, io)) && allPass;
    return allPass ? EXIT.ok : EXIT.failure;
  },
};
