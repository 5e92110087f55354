import { readFileSync } from 'node:fs';
import Ajv, { type ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';
import { isScalar, LineCounter, parseDocument, Scalar, type Node } from 'yaml';
import schema from '../../schema/mapping.schema.json';
import { MappingError, type FieldError } from '../errors';
import { closestName } from '../names';
import type { MappingDefinition } from './types';

export { schema as mappingSchema };

// verbose: errors carry their schema (for patternMessage) and the value (to tell a YAML map from an expression).
const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
addFormats(ajv);
const validateMapping = ajv.compile<MappingDefinition>(schema);

/** `/endpoints/update/method` → `endpoints.update.method`; array indexes as `[0]`. */
export function jsonPointerToPath(pointer: string): string {
  return pointer.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, seg) => (/^\d+$/.test(seg) ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : seg), '');
}

/** Turns ajv's errors into field errors a person can act on: the path, and what was expected. */
export function formatAjvErrors(errors: ErrorObject[] | null | undefined, root = ''): FieldError[] {
  const out: FieldError[] = [];
  const join = (a: string, b: string) => (a && b ? `${a}.${b}` : a || b);
  for (const e of errors ?? []) {
    const path = join(root, jsonPointerToPath(e.instancePath));
    const p = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case 'required': out.push({ field: join(path, String(p.missingProperty)), message: 'is required' }); break;
      case 'additionalProperties': {
        const name = String(p.additionalProperty);
        const near = closestName(name, Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {}));
        out.push({ field: join(path, name), message: near === undefined ? 'is not a known field' : `is not a known field; did you mean ${near}?` });
        break;
      }
      case 'enum': out.push({ field: path || '(root)', message: `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` }); break;
      case 'oneOf': case 'anyOf': case 'if': break; // the branch errors beside it say more
      case 'pattern': {
        // A schema may say what its pattern means (`patternMessage`): "must match pattern ^https?://…" says little.
        const said = (e.parentSchema as { patternMessage?: unknown } | undefined)?.patternMessage;
        out.push({ field: path || '(root)', message: typeof said === 'string' ? said : e.message ?? 'is invalid' });
        break;
      }
      case 'type': {
        const expression = (e.parentSchema as { description?: unknown } | undefined)?.description === 'A JSONata expression.';
        const hint = expression && typeof e.data === 'object' && e.data !== null
          ? ': a JSONata expression is text; write it as a block, `key: |` with the expression on the lines below' : '';
        out.push({ field: path || '(root)', message: `${e.message ?? 'is invalid'}${hint}` });
        break;
      }
      default: out.push({ field: path || '(root)', message: e.message ?? 'is invalid' });
    }
  }
  // ajv repeats an error once per failing oneOf branch; keep each once.
  return out.filter((e, i) => out.findIndex((o) => o.field === e.field && o.message === e.message) === i);
}

type ParsedDocument = ReturnType<typeof parseDocument>;

/** The path's segments: `endpoints.update.url` → ['endpoints', 'update', 'url'], `[0]` → 0. */
function segments(field: string): Array<string | number> {
  return field.split(/\.|\[(\d+)\]/).filter((s) => s !== undefined && s !== '').map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function lineOf(doc: ParsedDocument, lines: LineCounter, field: string): number | undefined {
  const path = segments(field);
  for (let n = path.length; n > 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as Node | undefined;
    if (node && typeof node === 'object' && 'range' in node && node.range) return lines.linePos(node.range[0]).line;
  }
  return undefined;
}

/**
 * The file's line of a character offset inside a field's text (a JSONata position in a `payload: |` block). A literal
 * block keeps its lines; any other text is placed on the line where it starts.
 */
function lineWithin(doc: ParsedDocument, lines: LineCounter, field: string, offset: number): number | undefined {
  const node = doc.getIn(segments(field), true);
  if (!isScalar(node) || typeof node.value !== 'string' || !node.range) return lineOf(doc, lines, field);
  const start = lines.linePos(node.range[0]).line;
  if (node.type !== Scalar.BLOCK_LITERAL) return start;
  const before = node.value.slice(0, Math.max(0, offset - 1));
  return start + 1 + (before.match(/\n/g)?.length ?? 0);
}

/** A mapping file parsed and validated, with where its fields sit in the file (for errors found later, when compiled). */
export interface ParsedMapping {
  readonly definition: MappingDefinition;
  /** The line a field starts on; with an offset into the field's text, the line that character is on. */
  lineOf(field: string, offset?: number): number | undefined;
}

/** YAML's syntax errors shown at most: after the first few, the rest are nearly always the first one's echo. */
const MAX_SYNTAX_ERRORS = 5;

function syntaxErrors(doc: ParsedDocument): FieldError[] {
  const errors = doc.errors.slice(0, MAX_SYNTAX_ERRORS).map((e) => {
    const message = e.message.split('\n')[0]!.replace(/:\s*$/, '');
    // The classic: an unquoted value with ": " or a "{" in it (`description: Token auth: {...}`).
    const hint = e.code === 'BLOCK_AS_IMPLICIT_KEY' || /Nested mappings are not allowed|Implicit keys? .*map/.test(message)
      ? ' (a value holding ": ", "{" or "[" needs quotes, or a block: `key: |`)' : '';
    return { field: `line ${e.linePos?.[0]?.line ?? '?'}`, message: message + hint };
  });
  const more = doc.errors.length - errors.length;
  if (more > 0) errors.push({ field: '(document)', message: `${more} more syntax errors after these, most of them caused by the first` });
  return errors;
}

/** Parses and validates a mapping file's text (YAML or JSON). Throws a MappingError naming the file, path and expectation. */
export function parseMappingText(text: string, file?: string): ParsedMapping {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) throw new MappingError(syntaxErrors(doc), { file, code: 'ERR_MAPPING_SYNTAX' });
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // An alias without its anchor, or aliases that would expand without end (a "billion laughs" file).
    throw new MappingError([{ field: '(document)', message: (err as Error).message }], { file, code: 'ERR_MAPPING_SYNTAX' });
  }
  if (!validateMapping(data)) {
    const errors = formatAjvErrors(validateMapping.errors).map((e) => {
      const line = lineOf(doc, lines, e.field);
      return line ? { ...e, message: `${e.message} (line ${line})` } : e;
    });
    throw new MappingError(errors, { file });
  }
  return {
    definition: data,
    lineOf: (field, offset) => (offset === undefined ? lineOf(doc, lines, field) : lineWithin(doc, lines, field, offset)),
  };
}

/** Parses and validates a mapping file's text (YAML or JSON). Throws a MappingError naming the file, path and expectation. */
export function parseMapping(text: string, file?: string): MappingDefinition {
  return parseMappingText(text, file).definition;
}

export function loadMappingFile(path: string): { definition: MappingDefinition; text: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new MappingError([{ field: '(file)', message: `cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }], { file: path, code: 'ERR_MAPPING_READ' });
  }
  return { definition: parseMapping(text, path), text };
}
