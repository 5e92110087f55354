import vm from 'node:vm';
import jsonata from 'jsonata';
import Handlebars from 'handlebars';
import { parsePhoneNumberFromString } from 'libphonenumber-js';
import { MappingError, type ErrorContext } from '../errors';

/** Guardrails for customer-written expressions: a runaway or deeply recursive expression is stopped, not waited on. */
export const EXPRESSION_LIMITS = { timeoutMs: 250, maxDepth: 300, regexTimeoutMs: 100 };

const regexRealm = vm.createContext({});
const regexExec = new vm.Script('re.exec(s)');

/**
 * JSONata's regex engine with a time cap on each match. One catastrophic match (`/^(a+)+$/` on a contact's 30-letter
 * name) runs in a single evaluation step, where JSONata's own time cap never looks, and would block the process for
 * minutes; V8 can only interrupt it from a watchdog, which node:vm's timeout provides.
 */
class TimeLimitedRegExp {
  lastIndex = 0;
  private readonly re: RegExp;

  constructor(literal: RegExp) {
    this.re = new RegExp(literal.source, literal.flags);
  }

  exec(text: string): RegExpExecArray | null {
    this.re.lastIndex = this.lastIndex;
    Object.assign(regexRealm, { re: this.re, s: text });
    try {
      return regexExec.runInContext(regexRealm, { timeout: EXPRESSION_LIMITS.regexTimeoutMs }) as RegExpExecArray | null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw { code: 'REGEX_TIMEOUT', message: `the regular expression /${this.re.source}/ ran longer than ${EXPRESSION_LIMITS.regexTimeoutMs} ms` };
      throw err;
    } finally {
      this.lastIndex = this.re.lastIndex;
      Object.assign(regexRealm, { re: undefined, s: undefined });
    }
  }
}

function phoneParts(phone: unknown) {
  return typeof phone === 'string' ? parsePhoneNumberFromString(phone) : undefined;
}

/** Helpers every JSONata expression can call: phone formats and name parts CRMs commonly want. */
const FUNCTIONS: Array<[string, (...args: any[]) => unknown, string]> = [
  ['digits', (p?: string) => (typeof p === 'string' ? p.replace(/\D/g, '') : undefined), '<s-:s>'],
  ['e164', (p?: string) => phoneParts(p)?.number, '<s-:s>'],
  ['nationalNumber', (p?: string) => phoneParts(p)?.nationalNumber, '<s-:s>'],
  ['nationalFormat', (p?: string) => phoneParts(p)?.formatNational(), '<s-:s>'],
  ['internationalFormat', (p?: string) => phoneParts(p)?.formatInternational(), '<s-:s>'],
  ['countryCallingCode', (p?: string) => phoneParts(p)?.countryCallingCode, '<s-:s>'],
  ['phoneCountry', (p?: string) => phoneParts(p)?.country, '<s-:s>'],
  ['firstName', (n?: string) => (typeof n === 'string' ? n.trim().split(/\s+/)[0] || undefined : undefined), '<s-:s>'],
  // A single-word name has no last name; CRMs that require one get the whole name back from `$lastName(name, true)`.
  ['lastName', (n?: string, fallback?: boolean) => {
    if (typeof n !== 'string') return undefined;
    const parts = n.trim().split(/\s+/);
    return parts.length > 1 ? parts.slice(1).join(' ') : fallback ? parts[0] || undefined : undefined;
  }, '<s-b?:s>'],
];

export interface CompiledExpression {
  readonly source: string;
  /** Where the expression sits in the mapping file, e.g. `endpoints.create.body`. */
  readonly field: string;
  evaluate(input: unknown, context?: ErrorContext): Promise<unknown>;
}

interface JsonataError { code?: string; position?: number; token?: string; message?: string }

/**
 * Whether an expression can run away: only a function it defines (loops, recursion), a range (`[1..1e7]`), `$eval`
 * or a regular expression (backtracking) can make JSONata's work outgrow the expression and its input. The guardrails are checked at every evaluation step,
 * which costs about a tenth of a payload's evaluation, so expressions without any of these go without them.
 */
function canRunAway(node: unknown): boolean {
  if (node === null || typeof node !== 'object') return false;
  if (Array.isArray(node)) return node.some(canRunAway);
  const n = node as { type?: string; value?: unknown };
  if (n.type === 'lambda' || n.type === 'partial' || n.type === 'regex' || (n.type === 'binary' && n.value === '..') || (n.type === 'variable' && n.value === 'eval')) return true;
  return Object.values(n).some(canRunAway);
}

export function compileExpression(source: string, field: string, file?: string): CompiledExpression {
  let expr: jsonata.Expression;
  try {
    expr = jsonata(source);
    if (canRunAway(expr.ast())) {
      expr = jsonata(source, { timeout: EXPRESSION_LIMITS.timeoutMs, stack: EXPRESSION_LIMITS.maxDepth, RegexEngine: TimeLimitedRegExp } as unknown as jsonata.JsonataOptions);
    }
  } catch (err) {
    const e = err as JsonataError;
    throw new MappingError([{ field, message: `JSONata syntax error ${e.code ?? ''} at position ${e.position ?? '?'}${e.token ? ` near ${JSON.stringify(e.token)}` : ''}: ${e.message ?? String(err)}` }],
      { file, code: 'ERR_MAPPING_EXPRESSION' });
  }
  for (const [name, fn, signature] of FUNCTIONS) expr.registerFunction(name, fn, signature);
  return {
    source,
    field,
    async evaluate(input, context) {
      try {
        return await expr.evaluate(input);
      } catch (err) {
        const e = err as JsonataError;
        const why = e.code === 'D1012' ? `ran longer than ${EXPRESSION_LIMITS.timeoutMs} ms`
          : e.code === 'D1011' ? `recursed deeper than ${EXPRESSION_LIMITS.maxDepth}` : e.message ?? String(err);
        throw new MappingError([{ field, message: `JSONata evaluation failed${e.code ? ` (${e.code})` : ''}${e.position !== undefined ? ` at position ${e.position}` : ''}: ${why}` }],
          { file, code: 'ERR_MAPPING_EVALUATION', context });
      }
    },
  };
}

// A private Handlebars environment: only the built-ins and the helpers below, nothing registered by anyone else leaks in.
const hbs = Handlebars.create();

const BACKSLASH_ESCAPES: Record<string, string> = { '\\': '\\\\', "'": "\\'", '"': '\\"', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };

/**
 * `{{backslashEscape value}}`: the value made safe inside a quoted string literal of a query language that escapes
 * with backslashes (SOQL, and the MySQL-style dialects): backslashes, quotes and control characters get a backslash. Without it a
 * contact's `o'brien@example.com` would end the literal early (a malformed query, or a different one).
 */
hbs.registerHelper('backslashEscape', (value: unknown) => (value === undefined || value === null ? '' : String(value).replace(/[\\'"\n\r\t\b\f]/g, (c) => BACKSLASH_ESCAPES[c]!)));

export interface CompiledTemplate {
  readonly source: string;
  readonly field: string;
  /** Renders with every inserted value percent-encoded. Throws a MappingError when a `strict` template names a missing value. */
  render(data: unknown, context?: ErrorContext): string;
}

const DOT_SEGMENT = /^\.{1,2}$/;
// Stands in for a `.` or `..` value; a rendered URL containing it is refused (see render).
const DOT_MARK = '\u0000dot-segment\u0000';

/** Percent-encodes every string leaf, so a value (a lead id with `/`, `?` or `#`) can never change a URL's structure. */
function encodeLeaves(value: unknown): unknown {
  if (typeof value === 'string') return DOT_SEGMENT.test(value) ? DOT_MARK : encodeURIComponent(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return value.map(encodeLeaves);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined && v !== null) out[k] = encodeLeaves(v);
    return out;
  }
  return undefined;
}

type TemplateAst = ReturnType<typeof hbs.parse>;

/**
 * The top-level names a template can reach (`leadId`, `contact` for `{{contact.phone}}`), so rendering encodes only
 * those and not the whole contact and payload. 'all' when it can reach anything (`{{this}}`, `@root`, partials).
 */
function rootsOf(ast: TemplateAst): Set<string> | 'all' {
  const roots = new Set<string>();
  let all = false;
  const visit = (node: unknown): void => {
    if (all || node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) { node.forEach(visit); return; }
    const n = node as { type?: string; data?: boolean; parts?: string[] };
    if (n.type === 'PartialStatement' || n.type === 'PartialBlockStatement') { all = true; return; }
    if (n.type === 'PathExpression') {
      const parts = n.data ? (n.parts?.[0] === 'root' ? n.parts.slice(1) : []) : n.parts ?? [];
      if (parts.length === 0) all = true;
      else roots.add(parts[0]!);
    }
    for (const [k, v] of Object.entries(n)) if (k !== 'loc') visit(v);
  };
  visit(ast);
  return all ? 'all' : roots;
}

/** The template's data with every value it can reach percent-encoded (see encodeLeaves). */
function encodedData(data: unknown, roots: Set<string> | 'all'): unknown {
  if (roots === 'all' || data === null || typeof data !== 'object') return encodeLeaves(data);
  const out: Record<string, unknown> = {};
  for (const r of roots) {
    const v = encodeLeaves((data as Record<string, unknown>)[r]);
    if (v !== undefined) out[r] = v;
  }
  return out;
}

/**
 * `encode: true` (URL paths) percent-encodes every value inserted; query values and headers are inserted as they are
 * (the URL API encodes query values itself; header values are checked by the HTTP client).
 */
export function compileTemplate(source: string, field: string, opts: { strict: boolean; encode: boolean; file?: string }): CompiledTemplate {
  let ast: TemplateAst;
  try {
    ast = hbs.parse(source);
  } catch (err) {
    throw new MappingError([{ field, message: `Handlebars syntax error: ${(err as Error).message.split('\n').join(' ')}` }], { file: opts.file, code: 'ERR_MAPPING_TEMPLATE' });
  }
  const template = hbs.compile(ast, { noEscape: true, strict: opts.strict });
  const roots = opts.encode ? rootsOf(ast) : 'all';
  return {
    source,
    field,
    render(data, context) {
      let out: string;
      try {
        out = template(opts.encode ? encodedData(data, roots) : data);
      } catch (err) {
        throw new MappingError([{ field, message: `cannot render: ${(err as Error).message.split('\n')[0]}` }], { file: opts.file, code: 'ERR_MAPPING_TEMPLATE', context });
      }
      // WHATWG URLs resolve `.` and `..` (encoded or not) as path segments whatever we do: refuse them.
      if (out.includes(DOT_MARK)) {
        throw new MappingError([{ field, message: 'refusing to put "." or ".." into a URL: it would change the path' }], { file: opts.file, code: 'ERR_UNSAFE_URL_VALUE', context });
      }
      return out;
    },
  };
}
