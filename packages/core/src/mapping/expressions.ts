import vm from 'node:vm';
import jsonata from 'jsonata';
import Handlebars from 'handlebars';
import { parsePhoneNumberFromString } from 'libphonenumber-js';
import { MappingError, type ErrorContext } from '../errors';
import { setOwn } from '../engine/cleared';
import { closestName } from '../names';

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
  /** `bindings`: variables and functions bound for this evaluation (`{millis: () => 0}` fixes `$millis()`). */
  evaluate(input: unknown, context?: ErrorContext, bindings?: Record<string, unknown>): Promise<unknown>;
}

/**
 * Bindings that make an evaluation depend on its input alone: `$now()`, `$millis()` and `$random()` give the same
 * every time (for comparing two renderings, which the clock would otherwise tell apart).
 */
export function timelessBindings(): Promise<Record<string, unknown>> {
  // $now keeps its picture and timezone arguments: a JSONata lambda formatting one fixed instant.
  timeless ??= jsonata('function($picture, $timezone) { $fromMillis(946684800000, $picture, $timezone) }').evaluate({})
    .then((now) => Object.freeze({ now, millis: () => 946_684_800_000, random: () => 0.5 }));
  return timeless;
}
let timeless: Promise<Record<string, unknown>> | undefined;

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

/**
 * JSONata's own functions in the pinned version (its static frame, and `$now` and `$millis` which it binds per
 * evaluation). A test reads jsonata's source to check this list against it.
 */
export const JSONATA_FUNCTIONS: readonly string[] = [
  'sum', 'count', 'max', 'min', 'average', 'string', 'substring', 'substringBefore', 'substringAfter', 'lowercase', 'uppercase',
  'length', 'trim', 'pad', 'match', 'contains', 'replace', 'split', 'join', 'formatNumber', 'formatBase', 'formatInteger',
  'parseInteger', 'number', 'floor', 'ceil', 'round', 'abs', 'sqrt', 'power', 'random', 'boolean', 'not', 'map', 'zip',
  'filter', 'single', 'reduce', 'sift', 'keys', 'lookup', 'append', 'exists', 'spread', 'merge', 'reverse', 'each', 'error',
  'assert', 'type', 'sort', 'shuffle', 'distinct', 'base64encode', 'base64decode', 'encodeUrlComponent', 'encodeUrl',
  'decodeUrlComponent', 'decodeUrl', 'eval', 'toMillis', 'fromMillis', 'clone', 'now', 'millis',
];
const CALLABLE = new Set([...JSONATA_FUNCTIONS, ...FUNCTIONS.map(([name]) => name)]);

interface JsonataNode { type?: string; value?: unknown; procedure?: JsonataNode; rhs?: JsonataNode; position?: number; focus?: unknown; index?: unknown; tuple?: unknown }

/**
 * Calls of a function that exists nowhere (`$nationalNum(phone)` for `$nationalNumber`), which JSONata reports only
 * when an evaluation reaches them, as "Attempted to invoke a non-function". A name the expression binds itself
 * (`$f := function...`, a lambda's parameter, `@$c`, `#$i`) is taken as callable wherever it is bound.
 */
function unknownFunctions(ast: unknown): Array<{ name: string; position?: number }> {
  const bound = new Set<string>();
  const called: Array<{ name: string; position?: number }> = [];
  const visit = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) { node.forEach(visit); return; }
    const n = node as JsonataNode & { lhs?: JsonataNode; arguments?: JsonataNode[] };
    if (n.type === 'bind' && n.lhs?.type === 'variable') bound.add(String(n.lhs.value));
    if (n.type === 'lambda') for (const a of n.arguments ?? []) if (a.type === 'variable') bound.add(String(a.value));
    if (typeof n.focus === 'string') bound.add(n.focus);
    if (typeof n.index === 'string') bound.add(n.index);
    if ((n.type === 'function' || n.type === 'partial') && n.procedure?.type === 'variable') called.push({ name: String(n.procedure.value), position: n.procedure.position });
    if (n.type === 'apply' && n.rhs?.type === 'variable') called.push({ name: String(n.rhs.value), position: n.rhs.position });
    for (const v of Object.values(n)) visit(v);
  };
  visit(ast);
  return called.filter((c) => c.name !== '' && !CALLABLE.has(c.name) && !bound.has(c.name));
}

/**
 * The names an expression reads from its input at the top (`secrets` in `secrets.key` or `$number(secrets.key)`),
 * not inside a later step of a path, a predicate or a function body, where paths start elsewhere. Empty when the
 * expression does not parse (compileExpression says why).
 */
export function inputRoots(source: string): string[] {
  let ast: unknown;
  try { ast = jsonata(source).ast(); } catch { return []; }
  const roots = new Set<string>();
  const visit = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) { node.forEach(visit); return; }
    const n = node as { type?: string; value?: unknown; steps?: unknown[] };
    if (n.type === 'lambda') return; // its body reads what it is called with
    if (n.type === 'path') {
      const first = n.steps?.[0] as { type?: string; value?: unknown } | undefined;
      if (first?.type === 'name') roots.add(String(first.value));
      else visit(first);
      return;
    }
    if (n.type === 'name') { roots.add(String(n.value)); return; }
    for (const [k, v] of Object.entries(n)) if (k !== 'predicate' && k !== 'stages' && k !== 'group') visit(v);
  };
  visit(ast);
  return [...roots];
}

/** The keys of an expression that is an object constructor (`{"a": …, "b": …}`, or a block ending in one); else undefined. */
export function constructedKeys(source: string): string[] | undefined {
  let ast: { type?: string; value?: unknown; lhs?: unknown; expressions?: unknown[] };
  try { ast = jsonata(source).ast() as typeof ast; } catch { return undefined; }
  while (ast?.type === 'block' && Array.isArray(ast.expressions) && ast.expressions.length > 0) ast = ast.expressions.at(-1) as typeof ast;
  if (ast?.type !== 'unary' || ast.value !== '{' || !Array.isArray(ast.lhs)) return undefined;
  const keys = (ast.lhs as Array<[{ type?: string; value?: unknown }, unknown]>).map(([k]) => (k?.type === 'string' ? String(k.value) : undefined));
  return keys.every((k) => k !== undefined) ? keys as string[] : undefined;
}

export function compileExpression(source: string, field: string, file?: string): CompiledExpression {
  let expr: jsonata.Expression;
  try {
    expr = jsonata(source);
    const ast = expr.ast();
    const unknown = unknownFunctions(ast);
    if (unknown.length > 0) {
      throw new MappingError(unknown.map(({ name, position }) => ({ field, message: `$${name}${position !== undefined ? ` at position ${position}` : ''}: no function of that name${suggestion(name, CALLABLE)}` })),
        { file, code: 'ERR_MAPPING_EXPRESSION' });
    }
    if (canRunAway(ast)) {
      expr = jsonata(source, { timeout: EXPRESSION_LIMITS.timeoutMs, stack: EXPRESSION_LIMITS.maxDepth, RegexEngine: TimeLimitedRegExp } as unknown as jsonata.JsonataOptions);
    }
  } catch (err) {
    if (err instanceof MappingError) throw err;
    const e = err as JsonataError;
    throw new MappingError([{ field, message: `JSONata syntax error ${e.code ?? ''} at position ${e.position ?? '?'}${e.token ? ` near ${JSON.stringify(e.token)}` : ''}: ${e.message ?? String(err)}` }],
      { file, code: 'ERR_MAPPING_EXPRESSION' });
  }
  for (const [name, fn, signature] of FUNCTIONS) expr.registerFunction(name, fn, signature);
  return {
    source,
    field,
    async evaluate(input, context, bindings) {
      try {
        return await (bindings ? expr.evaluate(input, bindings) : expr.evaluate(input));
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

/**
 * `(eq a b)`: whether two values are the same, compared as text, for `{{#if (eq match.key "phone")}}mobile_number{{else}}email{{/if}}`
 * (a CRM whose parameter names are not crm-sync's match keys). Absent and null are equal to each other only.
 */
hbs.registerHelper('eq', (a: unknown, b: unknown) => (a === undefined || a === null || b === undefined || b === null ? (a ?? null) === (b ?? null) : String(a) === String(b)));

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
    for (const [k, v] of Object.entries(value)) if (v !== undefined && v !== null) setOwn(out, k, encodeLeaves(v));
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
 * What a template's data holds, for checking a template when it is compiled rather than when a contact first meets
 * it: each top-level name with the names under it (`'any'`: whatever the mapping or the contact put there), and the
 * names this template is never given (an endpoint that has no lead id yet).
 */
export interface TemplateScope {
  readonly names: Readonly<Record<string, readonly string[] | 'any'>>;
  /** Names this template is never given, each with why (`create is sent before there is a lead id`). */
  readonly neverSet?: Readonly<Record<string, string>>;
}

/** Helpers a template can call: Handlebars' own and ours (see above). */
function knownHelpers(): Set<string> {
  return new Set(Object.keys(hbs.helpers).filter((h) => h !== 'helperMissing' && h !== 'blockHelperMissing'));
}

/** Block helpers whose condition asks whether a value is set; `if` and `with` run their block when it is, `unless` its else. */
const CONDITIONS: Record<string, 'program' | 'inverse'> = { if: 'program', unless: 'inverse', with: 'program' };
/** Block helpers that keep the context for the block: paths inside still start at the top-level names. */
const SAME_CONTEXT = new Set(['if', 'unless']);
/** Helpers that throw when called without an argument (`{{lookup}}`, `{{if}}`). */
const NEED_ARGUMENTS = new Set(['if', 'unless', 'each', 'with', 'lookup', 'eq']);

interface HbsNode {
  type?: string;
  path?: HbsNode;
  params?: HbsNode[];
  hash?: { pairs?: Array<{ value: HbsNode }> };
  program?: { body?: HbsNode[] };
  inverse?: { body?: HbsNode[] };
  body?: HbsNode[];
  data?: boolean;
  depth?: number;
  parts?: string[];
  original?: string;
  loc?: { start: { line: number; column: number } };
}

/** Where a path is met: whether it starts at the top-level names, which names an enclosing condition tested. */
interface Place {
  rooted: boolean;
  /** Names an enclosing `#if`/`#with` (or `#unless` else) found set. */
  tested: ReadonlySet<string>;
  /** The path is a condition's own argument (`{{#if leadId}}`): asking whether it is set is its purpose. */
  condition?: boolean;
}

/**
 * The mistakes a template can hold that only a contact would otherwise find: a name the data does not have (a typo
 * such as `{{lead_id}}` or `{{contact.emial}}`, which a URL refuses on every sync and a query or header renders as
 * nothing), a helper that does not exist or is called without its argument, and a name this endpoint is never given
 * (outside a condition that tests it; in a strict template even a condition cannot read a part of it). Paths inside
 * `#each` and `#with` start elsewhere, so only their helpers are checked there.
 */
function checkTemplate(ast: TemplateAst, scope: TemplateScope, strict: boolean): string[] {
  const problems: string[] = [];
  const helpers = knownHelpers();
  const listed = Object.keys(scope.names).join(', ');
  const at = (n: HbsNode) => (n.loc ? ` (at ${n.loc.start.line}:${n.loc.start.column + 1})` : '');
  const checkPath = (p: HbsNode, place: Place) => {
    if (p.type !== 'PathExpression') { walkValue(p, place); return; }
    let parts = p.parts ?? [];
    if (p.data) {
      if (parts[0] !== 'root') return; // @index, @key, @first...: loop data
      parts = parts.slice(1);
    } else if (!place.rooted || (p.depth ?? 0) > 0) return;
    const [head, sub] = parts;
    if (head === undefined) return; // {{this}}
    const under = Object.hasOwn(scope.names, head) ? scope.names[head] : undefined; // not `constructor` from Object
    const why = scope.neverSet?.[head];
    if (under === undefined) {
      problems.push(`{{${p.original}}}${at(p)}: there is no ${JSON.stringify(head)}; a template can use ${listed}`);
    } else if (sub !== undefined && under !== 'any' && !under.includes(sub)) {
      problems.push(`{{${p.original}}}${at(p)}: ${head} has no ${JSON.stringify(sub)}; it has ${under.length > 0 ? under.join(', ') : `none${head === 'secrets' ? ' (declare it under the mapping\'s secrets:, as env:NAME or file:PATH)' : ''}`}`);
    } else if (why !== undefined && place.condition && sub !== undefined && strict) {
      problems.push(`{{${p.original}}}${at(p)}: ${head} is never set here (${why}), and a URL cannot read a part of it; test {{#if ${head}}} instead`);
    } else if (why !== undefined && !place.condition && !place.tested.has(head)) {
      problems.push(`{{${p.original}}}${at(p)}: ${head} is never set here (${why})`);
    }
  };
  const walkValue = (n: HbsNode | undefined, place: Place): void => {
    if (!n) return;
    if (n.type === 'PathExpression') checkPath(n, place);
    else if (n.type === 'SubExpression') walkCall(n, { ...place, condition: false });
  };
  const helperOf = (n: HbsNode) => (n.path?.type === 'PathExpression' && !n.path.data && (n.path.depth ?? 0) === 0 && n.path.parts?.length === 1 ? n.path.parts[0]! : undefined);
  const walkCall = (n: HbsNode, place: Place) => {
    const name = helperOf(n);
    const args = [...(n.params ?? []), ...(n.hash?.pairs ?? []).map((p) => p.value)];
    if (args.length > 0 || n.type === 'SubExpression') {
      if (name === undefined || !helpers.has(name)) problems.push(`${n.path?.original ?? '?'}${at(n)}: no helper of that name; the helpers are ${[...helpers].join(', ')}`);
    } else if (name !== undefined && NEED_ARGUMENTS.has(name)) {
      problems.push(`${name}${at(n)}: the ${name} helper needs an argument`);
    } else if (name === undefined || !helpers.has(name)) checkPath(n.path!, { ...place, condition: false });
    for (const a of args) walkValue(a, place);
  };
  /** The names a condition's arguments test: `{{#if match}}`, `{{#if match.key}}` and `{{#if (eq match.key "x")}}` test match. */
  const testedBy = (n: HbsNode): string[] => (n.params ?? []).flatMap(function heads(a: HbsNode): string[] {
    if (a.type === 'PathExpression' && !a.data && (a.depth ?? 0) === 0 && a.parts?.[0] !== undefined) return [a.parts[0]];
    if (a.type === 'SubExpression') return (a.params ?? []).flatMap(heads);
    return [];
  });
  const walkBody = (body: HbsNode[] | undefined, place: Place): void => {
    for (const n of body ?? []) {
      if (n.type === 'MustacheStatement') walkCall(n, { ...place, condition: false });
      else if (n.type === 'BlockStatement') {
        const name = helperOf(n);
        const condition = name !== undefined ? CONDITIONS[name] : undefined;
        walkCall(n, { ...place, condition: condition !== undefined });
        const tested = condition ? new Set([...place.tested, ...testedBy(n)]) : place.tested;
        const keeps = name !== undefined && SAME_CONTEXT.has(name);
        // The block runs in the context the helper gives (each and with: the value); its else in the outer one.
        walkBody(n.program?.body, { rooted: place.rooted && keeps, tested: condition === 'program' ? tested : place.tested });
        walkBody(n.inverse?.body, { rooted: place.rooted, tested: condition === 'inverse' ? tested : place.tested });
      }
    }
  };
  walkBody((ast as HbsNode).body, { rooted: true, tested: new Set() });
  return problems;
}

/**
 * `encode: true` (URL paths) percent-encodes every value inserted; query values and headers are inserted as they are
 * (the URL API encodes query values itself; header values are checked by the HTTP client). With a `scope`, the names
 * the template uses are checked against it (see checkTemplate).
 */
export function compileTemplate(source: string, field: string, opts: { strict: boolean; encode: boolean; file?: string; scope?: TemplateScope }): CompiledTemplate {
  let ast: TemplateAst;
  try {
    ast = hbs.parse(source);
  } catch (err) {
    throw new MappingError([{ field, message: `Handlebars syntax error: ${handlebarsSyntaxMessage(err)}` }], { file: opts.file, code: 'ERR_MAPPING_TEMPLATE' });
  }
  const problems = opts.scope ? checkTemplate(ast, opts.scope, opts.strict) : [];
  if (problems.length > 0) throw new MappingError(problems.map((message) => ({ field, message })), { file: opts.file, code: 'ERR_MAPPING_TEMPLATE' });
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
        throw new MappingError([{ field, message: `cannot render: ${renderFailure(err)}` }], { file: opts.file, code: 'ERR_MAPPING_TEMPLATE', context });
      }
      // WHATWG URLs resolve `.` and `..` (encoded or not) as path segments whatever we do: refuse them.
      if (out.includes(DOT_MARK)) {
        throw new MappingError([{ field, message: 'refusing to put "." or ".." into a URL: it would change the path' }], { file: opts.file, code: 'ERR_UNSAFE_URL_VALUE', context });
      }
      return out;
    },
  };
}

/**
 * Handlebars' strict-mode error (`"email" not defined in [object Object] - 1:23`) said the way a mapping's author
 * can act on: which name had no value, and where in the template.
 */
function renderFailure(err: unknown): string {
  const message = (err as Error)?.message?.split('\n')[0] ?? String(err);
  const m = /^"([^"]*)" not defined in .* - (\d+):(\d+)$/.exec(message);
  return m ? `${JSON.stringify(m[1])} has no value here (template position ${m[2]}:${Number(m[3]) + 1})` : message;
}

/** A Handlebars parse error on one line: its message without the source excerpt and caret, which lose their layout. */
function handlebarsSyntaxMessage(err: unknown): string {
  const lines = String((err as Error)?.message ?? err).split('\n');
  const where = /^Parse error on line (\d+):$/.exec(lines[0] ?? '');
  const caret = lines.findIndex((l) => /^-*\^$/.test(l));
  const expecting = lines.find((l) => l.startsWith('Expecting ') || l.startsWith('Unexpected '));
  if (where && caret > 0 && expecting) {
    const before = lines[caret - 1]!.slice(0, lines[caret]!.length - 1);
    return `line ${where[1]} of the template, after ${JSON.stringify(before)}: ${expecting}`;
  }
  return lines.filter((l, i) => l.trim() !== '' && i !== caret).join(' ');
}

/** `; did you mean $nationalNumber?` for a name one or two edits (or a prefix) away from a known one. */
function suggestion(name: string, known: Iterable<string>): string {
  const best = closestName(name, known);
  return best === undefined ? '' : `; did you mean $${best}?`;
}
