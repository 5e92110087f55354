/**
 * The slice of SOQL a CRM sync uses to find a lead, parsed as strictly as Salesforce does:
 *   SELECT f1[, f2…] FROM Object WHERE Field = 'literal' [ORDER BY Field [ASC|DESC]] [LIMIT n]
 * String literals take backslash escapes (\' \" \\ \n \r \t \b \f \uXXXX); an unescaped quote ends the literal, so
 * a value with a stray quote leaves tokens behind and is a MALFORMED_QUERY, as it is in Salesforce.
 */

export interface SoqlQuery {
  fields: string[];
  object: string;
  where: { field: string; value: string };
  orderBy?: { field: string; descending: boolean };
  limit?: number;
}

export class SoqlError extends Error {
  constructor(message: string, readonly column: number) {
    super(`ERROR at Row:1:Column:${column}\n${message}`);
  }
}

interface Token {
  kind: 'word' | 'string' | 'number' | 'punct';
  text: string;
  /** The decoded value of a string literal. */
  value?: string;
  column: number;
}

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', b: '\b', f: '\f', '"': '"', "'": "'", '\\': '\\' };

function tokenize(q: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < q.length) {
    const c = q[i]!;
    const column = i + 1;
    if (/\s/.test(c)) { i++; continue; }
    if (c === ',' || c === '=') { out.push({ kind: 'punct', text: c, column }); i++; continue; }
    if (c === "'") {
      let value = '';
      i++;
      for (;;) {
        if (i >= q.length) throw new SoqlError('unterminated string literal', column);
        const ch = q[i]!;
        if (ch === "'") { i++; break; }
        if (ch === '\\') {
          const e = q[i + 1] ?? '';
          if (e.toLowerCase() === 'u' && /^[0-9a-fA-F]{4}$/.test(q.slice(i + 2, i + 6))) {
            value += String.fromCharCode(parseInt(q.slice(i + 2, i + 6), 16));
            i += 6;
            continue;
          }
          const decoded = ESCAPES[e] ?? ESCAPES[e.toLowerCase()];
          if (decoded === undefined) throw new SoqlError(`Invalid string literal '${q.slice(column - 1, i + 2)}'. Illegal character sequence '\\${e}' in string literal.`, i + 1);
          value += decoded;
          i += 2;
          continue;
        }
        value += ch;
        i++;
      }
      out.push({ kind: 'string', text: q.slice(column - 1, i), value, column });
      continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_.]*|^\d+/.exec(q.slice(i));
    if (!m) throw new SoqlError(`unexpected token: '${c}'`, column);
    out.push({ kind: /^\d/.test(m[0]) ? 'number' : 'word', text: m[0], column });
    i += m[0].length;
  }
  return out;
}

export function parseSoql(q: string): SoqlQuery {
  const tokens = tokenize(q);
  let pos = 0;
  const end = q.length + 1;
  const peek = () => tokens[pos];
  const unexpected = (t: Token | undefined): never => {
    throw t ? new SoqlError(`unexpected token: '${t.text}'`, t.column) : new SoqlError('unexpected end of query', end);
  };
  const keyword = (...words: string[]) => {
    for (const w of words) {
      const t = tokens[pos];
      if (t?.kind !== 'word' || t.text.toUpperCase() !== w) unexpected(t);
      pos++;
    }
  };
  const word = (): string => {
    const t = tokens[pos];
    if (t?.kind !== 'word') return unexpected(t);
    pos++;
    return t.text;
  };
  const isKeyword = (w: string) => peek()?.kind === 'word' && peek()!.text.toUpperCase() === w;

  keyword('SELECT');
  const fields = [word()];
  while (peek()?.text === ',') { pos++; fields.push(word()); }
  keyword('FROM');
  const object = word();
  keyword('WHERE');
  const field = word();
  if (peek()?.text !== '=') unexpected(peek());
  pos++;
  const literal = peek();
  if (literal?.kind !== 'string') return unexpected(literal);
  pos++;
  const query: SoqlQuery = { fields, object, where: { field, value: literal.value! } };
  if (isKeyword('ORDER')) {
    keyword('ORDER', 'BY');
    const by = word();
    let descending = false;
    if (isKeyword('ASC') || isKeyword('DESC')) descending = word().toUpperCase() === 'DESC';
    query.orderBy = { field: by, descending };
  }
  if (isKeyword('LIMIT')) {
    pos++;
    const n = peek();
    if (n?.kind !== 'number') return unexpected(n);
    pos++;
    query.limit = Number(n.text);
  }
  if (pos < tokens.length) unexpected(tokens[pos]);
  return query;
}
