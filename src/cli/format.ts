/** Small formatting helpers for human output on the terminal. */

import { formatBytes } from '../core/log.js';
import type { Manifest, ScoreFunction } from '../model/artifact.js';
import type { ImagePreprocessing } from '../model/image.js';
import type { VerifyReport } from '../model/reports.js';

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
  const changes = names
    .map((name) => ({ name, from: before[name] ?? 0, to: after[name] ?? 0 }))
    .filter((c) => c.from !== c.to);
  const added = changes.filter((c) => c.from === 0).sort((a, b) => b.to - a.to || a.name.localeCompare(b.name));
  const reduced = changes
    .filter((c) => c.from > 0)
    .sort((a, b) => b.from - b.to - (a.from - a.to) || a.name.localeCompare(b.name));
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

/** The precision and verify rows of compile and inspect: int8 details (dynamic or static) and agreement. */
/** The compile summary's row on the prune pass; none for artifacts compiled before it. */
export function pruningRows(m: Manifest): Array<[string, string]> {
  const p = m.pruning;
  if (!p) return [];
  if (!p.pruned) return [['pruned', `no: ${p.reason}`]];
  const { before, after, length, uncounted } = p.flops;
  const saving =
    uncounted || before <= 0
      ? `MatMul FLOPs not counted: ${uncounted ?? 0} products of unknown shape`
      : `−${((1 - after / before) * 100).toFixed(1)} % MatMul FLOPs at ${length} tokens`;
  return [
    ['pruned', `last layer computes token 0 only (${saving}; ${p.weightProducts.length} weight products on one row)`],
  ];
}

export function precisionRows(m: Manifest): Array<[string, string]> {
  const rows: Array<[string, string]> = [];
  const q = m.quantization;
  const sq = m.staticQuantization;
  if (sq) {
    const ops = Object.entries(sq.quantized)
      .map(([op, n]) => `${op} ${n}`)
      .join(', ');
    rows.push([
      'precision',
      `int8, static (calibrated on ${sq.calibration.samples} images): ${ops}; ${sq.weights.bits}-bit weights per ${sq.weights.perChannel ? 'channel' : 'tensor'}, ${sq.biasCorrected} biases corrected; ${formatBytes(sq.weightBytes.before)} → ${formatBytes(sq.weightBytes.after)}`,
    ]);
  } else
    rows.push([
      'precision',
      q
        ? `int8: ${q.quantized.length} MatMul/Gemm quantized${q.kept.length ? `, ${q.kept.length} kept fp32` : ''}${q.embeddings.length ? ', embeddings int8' : ''}; ${(q.quantizedFraction * 100).toFixed(1)} % of weights in 8 bits, ${formatBytes(q.weightBytes.before)} → ${formatBytes(q.weightBytes.after)}`
        : m.fp16
          ? `fp16: ${m.fp16.matmuls} MatMul/Gemm and ${m.fp16.gathers} embedding table(s) in fp16 (${formatBytes(m.fp16.weightBytes)} of weights); fp32 kept for ${m.fp16.keptFp32}`
          : 'fp32',
    ]);
  const v = m.verify;
  if (v) {
    const acc = v.accuracy
      ? `accuracy ${(v.accuracy.reference * 100).toFixed(2)} % → ${(v.accuracy.compiled * 100).toFixed(2)} % (drop ${v.accuracy.drop.toFixed(2)} pt, limit ${v.limits.maxAccuracyDrop}); `
      : '';
    rows.push([
      'verify',
      `${v.rows} rows of ${v.data}: ${acc}agreement ${agreementOf(v)}, max ${deltaOf(v)} ${v.maxAbsLogitDelta.toExponential(2)}, mean ${v.meanAbsLogitDelta.toExponential(2)}, ${v.flippedCount} flipped`,
    ]);
    for (const f of v.flipped.slice(0, 3))
      rows.push([
        '',
        `flipped line ${f.line}: ${f.reference} → ${f.compiled}${f.gold ? ` (gold ${f.gold})` : ''}: ${f.text.length > 60 ? `${f.text.slice(0, 57)}…` : f.text}`,
      ]);
  }
  return rows;
}

/** A verify report's agreement: `99.13 %` of the rows, or `97.83 % of 23 tokens` for a task verified by its answers. */
export function agreementOf(v: VerifyReport): string {
  const percent = `${(v.agreement * 100).toFixed(2)} %`;
  return v.unit ? `${percent} of ${v.units} ${v.unit}` : percent;
}

/** What a verify report's deltas are of: the logits, or the answers' scores (VerifyReport.maxAbsLogitDelta). */
export function deltaOf(v: VerifyReport): string {
  return v.unit ? '|Δscore|' : '|Δlogit|';
}

/** An image model's preprocessing in one line. */
export function describeImage(image: ImagePreprocessing): string {
  return `${image.height} × ${image.width} ${image.channels.toUpperCase()}, resize ${image.resize}${image.shortestEdge ? ` ${image.shortestEdge}` : ''} (${image.resample}), mean ${image.mean.join(',')}, std ${image.std.join(',')}`;
}

/** How a classifier's score function reads in compile's and inspect's tables. */
export function scoresRow(fn: ScoreFunction): string {
  return fn === 'none' ? 'the logits (--function-to-apply none)' : `${fn} of the logits`;
}

/** ` + 1 wide replica × 2 threads for lone requests` after a layout's replicas × threads; '' without one. */
export function wideNote(wideThreads: number): string {
  return wideThreads > 0 ? ` + 1 wide replica × ${wideThreads} threads for lone requests` : '';
}

/** ", up to N tokens a batch" for a layout whose batches are capped by padded tokens (ModelOptions.maxBatchTokens). */
export function batchTokensNote(maxBatchTokens: number | null): string {
  return maxBatchTokens === null ? '' : `, up to ${maxBatchTokens} tokens a batch`;
}
