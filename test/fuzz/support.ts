/** Shared by the fuzz suites: bounded, seeded runs and structural mutations of known-good documents. */
import fc from 'fast-check';

/** FUZZ_SEED reproduces a run; fast-check prints the seed (and the shrunk counterexample) when a property fails. */
export const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2_147_483_647);
export const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
export const params = (numRuns = RUNS): fc.Parameters<unknown> => ({ seed: SEED, numRuns, verbose: 1, interruptAfterTimeLimit: 20_000 });

type Path = Array<string | number>;

function pathsOf(value: unknown, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) pathsOf(v, [...at, Array.isArray(value) ? Number(k) : k], out);
  return out;
}

export interface Mutation { pick: number; op: 'delete' | 'set' | 'wrap' | 'rename'; value: unknown }

/** A few edits, each at any place in the document: delete a key, set any JSON value, wrap in an array, rename a key. */
export const mutations = fc.array(fc.record({
  pick: fc.nat(),
  op: fc.constantFrom<Mutation['op']>('delete', 'set', 'set', 'wrap', 'rename'),
  value: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.string(), fc.constantFrom('', '{{', '$eval(', '}}', '../../etc/passwd', 'env:', 'http://169.254.169.254', -1, 0, 1e308, null, true)),
}), { minLength: 1, maxLength: 4 });

export function mutate<T>(doc: T, edits: Mutation[]): unknown {
  let root: unknown = structuredClone(doc);
  for (const e of edits) {
    const paths = pathsOf(root);
    const path = paths[e.pick % paths.length]!;
    if (path.length === 0) { root = e.op === 'wrap' ? [root] : e.op === 'set' ? e.value : root; continue; }
    const parent = path.slice(0, -1).reduce<any>((node, k) => node[k], root);
    const key = path[path.length - 1]!;
    if (e.op === 'delete') { if (Array.isArray(parent)) parent.splice(Number(key), 1); else delete parent[key]; }
    else if (e.op === 'set') parent[key] = e.value;
    else if (e.op === 'wrap') parent[key] = [parent[key]];
    else if (!Array.isArray(parent)) { parent[`${String(key)}${typeof e.value === 'string' ? e.value.slice(0, 3) : 'x'}`] = parent[key]; delete parent[key]; }
  }
  return root;
}

/** A text edit: insert, delete or replace a short run of characters anywhere. */
export const textEdit = fc.record({ at: fc.nat(), cut: fc.nat({ max: 8 }), insert: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom(':', '- ', '{', '"', '\n  ', '\t', '&a', '*a', '!!js/function', '<<: *x')) });
export function editText(text: string, e: { at: number; cut: number; insert: string }): string {
  const at = e.at % (text.length + 1);
  return text.slice(0, at) + e.insert + text.slice(at + e.cut);
}
