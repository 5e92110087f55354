import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import type { Figure } from './figure';

export const START = '<!-- bench:start -->';
export const END = '<!-- bench:end -->';

export interface BenchResult {
  name: string;
  description: string;
  figures: Figure[];
}

const number = (v: number) => (Number.isInteger(v) && Math.abs(v) >= 1000 ? v.toLocaleString('en-US') : String(v));

export function toMarkdown(results: BenchResult[], command: string, date = new Date()): string {
  const cpus = os.cpus();
  const lines = [
    `Measured ${date.toISOString().slice(0, 10)} with \`${command}\` on Node ${process.version}, ${cpus.length} CPU(s)`
      + `${cpus[0] ? ` (${cpus[0].model.trim()})` : ''}, ${os.platform()} ${os.arch()}.`,
    '',
  ];
  for (const r of results) {
    lines.push(`### ${r.name}`, '', r.description, '', '| Figure | Value | Target |', '| --- | ---: | --- |');
    for (const f of r.figures) {
      const target = f.target ? `${f.target} ${f.met ? '(met)' : '(**not met**)'}` : '';
      // A figure without a number (NaN) is a described one: its note is the value.
      const value = Number.isNaN(f.value) ? f.note ?? '' : `${number(f.value)} ${f.unit}`;
      const note = !Number.isNaN(f.value) && f.note ? ` (${f.note})` : '';
      lines.push(`| ${f.name}${note} | ${value} | ${target} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

/** Replaces what sits between the markers in `file` (creating the file, or appending the markers, when missing). */
export function writeBetweenMarkers(file: string, markdown: string): void {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch { text = '# Benchmarks\n\n'; }
  const block = `${START}\n${markdown.trimEnd()}\n${END}`;
  const from = text.indexOf(START);
  const to = text.indexOf(END);
  const next = from >= 0 && to > from ? text.slice(0, from) + block + text.slice(to + END.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, next);
}
