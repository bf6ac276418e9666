/** Small formatting helpers for human output on the terminal. */

export { formatBytes, formatMs } from '../core/log.js';
export { percentile } from '../core/stats.js';

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/** Rows of `label  value` with the labels padded to one column. */
export function table(rows: Array<[string, string]>, indent = '  '): string {
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${indent}${label.padEnd(width)}  ${value}`).join('\n');
}

/** `new BiasGelu 4, LayerNormalization 9; fewer MatMul 32→28, …`: how optimization changed the op mix. */
export function operatorChanges(before: Record<string, number>, after: Record<string, number>, limit = 6): string {
  const names = [...new Set([...Object.keys(before), ...Object.keys(after)])];
  const changes = names.map((name) => ({ name, from: before[name] ?? 0, to: after[name] ?? 0 })).filter((c) => c.from !== c.to);
  const added = changes.filter((c) => c.from === 0).sort((a, b) => b.to - a.to || a.name.localeCompare(b.name));
  const reduced = changes.filter((c) => c.from > 0).sort((a, b) => b.from - b.to - (a.from - a.to) || a.name.localeCompare(b.name));
  const list = <T>(items: T[], show: (item: T) => string): string =>
    items.slice(0, limit).map(show).join(', ') + (items.length > limit ? `, +${items.length - limit} more` : '');
  const parts: string[] = [];
  if (added.length > 0) parts.push(`fused in: ${list(added, (c) => `${c.name} ${c.to}`)}`);
  if (reduced.length > 0) parts.push(`removed or merged: ${list(reduced, (c) => `${c.name} ${c.from}→${c.to}`)}`);
  return parts.join('; ') || 'unchanged';
}

export function sum(values: Record<string, number>): number {
  return Object.values(values).reduce((a, b) => a + b, 0);
}
