/**
 * docs/architecture.md's module table is the layering: a module imports only the modules listed
 * above it. This reads the table and every source file's relative imports (static, dynamic, and
 * `new URL(…)` paths of scripts it starts), so the doc and the code cannot drift apart.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { REPO } from '../fixtures/models.js';

const SRC = join(REPO, 'src');

/** Module folders in table order, lowest first: `| \`src/core/\` | … |` rows of the Modules section. */
async function documentedLayers(): Promise<string[]> {
  const doc = await readFile(join(REPO, 'docs', 'architecture.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Modules'), doc.indexOf('\n## ', doc.indexOf('## Modules') + 1));
  return [...section.matchAll(/^\| `src\/([a-z-]+)\/` \|/gm)].map((m) => m[1]!);
}

async function sourceFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await sourceFiles(path)));
    else if (entry.name.endsWith('.ts')) files.push(path);
  }
  return files;
}

/** The top folder under src/ of a path, or null for a file in src/ itself (version.ts, index.ts). */
function moduleOf(path: string): string | null {
  const parts = relative(SRC, path).split('/');
  return parts.length > 1 ? parts[0]! : null;
}

test("every import between src/ modules points up docs/architecture.md's module table", async () => {
  const layers = await documentedLayers();
  assert.ok(layers.length >= 8, `found only ${layers.length} modules in the table: ${layers.join(', ')}`);
  const violations: string[] = [];
  const files = await sourceFiles(SRC);
  for (const file of files) {
    const from = moduleOf(file);
    if (from === null) continue;
    assert.ok(layers.includes(from), `src/${from}/ is missing from docs/architecture.md's module table`);
    const text = await readFile(file, 'utf8');
    const specifiers = text.matchAll(/(?:from\s+|import\(\s*|new URL\(\s*)'(\.{1,2}\/[^']+)'/g);
    for (const [, specifier] of specifiers) {
      const to = moduleOf(resolve(dirname(file), specifier!));
      if (to === null || to === from) continue;
      if (layers.indexOf(to) > layers.indexOf(from))
        violations.push(`${relative(REPO, file)} imports ${specifier} (src/${to}/ is listed below src/${from}/)`);
    }
  }
  assert.ok(files.length > 50, `read only ${files.length} source files`);
  assert.deepEqual(violations, []);
});
