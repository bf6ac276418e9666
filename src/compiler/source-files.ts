/**
 * The source files that decide an artifact's content: hashed for the compile cache key, and
 * (config, tokenizer and preprocessing files) copied into the artifact beside the graph.
 */
import { basename } from 'node:path';
import { sha256, sha256File } from '../core/hash.js';
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

/** One hash of every source file's content, each named by its role. */
export async function hashSource(source: ModelSource): Promise<string> {
  const lines: string[] = [];
  for (const [role, path] of sourceFiles(source)) lines.push(`${role} ${await sha256File(path)}`);
  return sha256(lines.join('\n'));
}
