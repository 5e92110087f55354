/**
 * The known name a misspelt one most likely meant: one or two edits away (case aside), or a known name it begins
 * (`$nationalNum` → `$nationalNumber`, `notfound` → `notFound`, `CRM_SYNC_INGEST_TOKN` → `CRM_SYNC_INGEST_TOKEN`).
 * Undefined when none is that close.
 */
export function closestName(name: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  const lower = name.toLowerCase();
  for (const k of known) {
    if (k === name) return undefined;
    const d = k.toLowerCase().startsWith(lower) && name.length >= 4 ? 1 : editDistance(lower, k.toLowerCase());
    if (d < bestDistance) { best = k; bestDistance = d; }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}
