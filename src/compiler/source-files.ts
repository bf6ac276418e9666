/**
 * The source files that decide an artifact's content: hashed for the compile cache key, and
 * (config, tokenizer and preprocessing files) copied into the artifact beside the graph.
 */
import { basename } from 'node:path';
import { sha256, sha256File } from '../core/hash.js';
import { snapshotFileId } from '../hub/cache-layout.js';
import type { ModelSource } from '../model/source.js';

/** Source files that decide the artifact's content, by role. */
function sourceFiles(source: ModelSource): Array<[string, string]> {
  return [
    ...companionPaths(source),
    ...source.extraFiles.map((f): [string, string] => [basename(f), f]),
    ...(source.onnxPath ? [['model.onnx', source.onnxPath] as [string, string]] : []),
    ...source.weightFiles.map((f): [string, string] => [basename(f), f]),
  ];
}

/** The files copied into the artifact beside the optimized graph. */
export function companionFiles(source: ModelSource): Array<[string, string]> {
  return [...companionPaths(source), ...source.extraFiles.map((f): [string, string] => [basename(f), f])];
}

/** config.json and tokenizer.json, those present (an image model has no tokenizer). */
function companionPaths(source: ModelSource): Array<[string, string]> {
  const files: Array<[string, string]> = [];
  if (source.configPath) files.push(['config.json', source.configPath]);
  if (source.tokenizerPath) files.push(['tokenizer.json', source.tokenizerPath]);
  return files;
}

/**
 * One hash of every source file's content, each named by its role. A Hub snapshot's files are
 * named by the hashes in the Hub's listing (checked at download), so its key is repo + commit +
 * those names and nothing is read; a local file is hashed.
 */
export async function hashSource(source: ModelSource): Promise<string> {
  const lines: string[] = source.hub ? [`hub ${source.hub.repo} ${source.hub.commit}`] : [];
  for (const [role, path] of sourceFiles(source)) {
    const blob = source.hub ? await snapshotFileId(path) : null;
    lines.push(`${role} ${blob ?? (await sha256File(path))}`);
  }
  return sha256(lines.join('\n'));
}
