import { cacheRoot, clearCache, listEntries } from '../../compiler/cache.js';
import { KilnError } from '../../core/errors.js';
import { listCachedRepos, removeCachedRepo } from '../../hub/cache-layout.js';
import { parseBareSource, parsePrefixedSource } from '../../hub/model-id.js';
import { hubCacheDir } from '../../hub/settings.js';
import { formatBytes } from '../format.js';
import { defineCommand } from '../table.js';

/** Rows padded to columns, one line each. */
function columns(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map(
      (row) =>
        `${row
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}

function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

export const cacheLsCommand = defineCommand({
  name: 'cache ls',
  summary: 'List compiled artifacts in the compile cache, and Hub models in the Hub cache.',
  description:
    'One line per cache entry: key, source path, compile options, size on disk and age, newest first. Then one line per ' +
    'Hugging Face Hub snapshot in the Hub cache ($HF_HUB_CACHE, else $HF_HOME/hub, shared with Python): repo, the ' +
    'branches or tags that point at it → commit, files, size and when it was last used.',
  positionals: [],
  flags: {
    json: {
      type: 'boolean',
      description: 'Print one JSON line per entry (Hub snapshots: kind hub-snapshot).',
      default: false,
    },
  },
  examples: [
    { command: 'kiln cache ls', note: 'what is cached, and how big it is' },
    { command: 'KILN_CACHE_DIR=/mnt/cache kiln cache ls --json', note: 'another cache folder, machine-readable' },
  ],
  async run({ flags }) {
    const entries = await listEntries();
    const hubDir = hubCacheDir();
    const snapshots = (await listCachedRepos(hubDir)).flatMap((r) =>
      r.revisions.map((v) => ({ kind: 'hub-snapshot', repo: r.repo, ...v })),
    );
    if (flags.json) {
      for (const e of entries) process.stdout.write(`${JSON.stringify(e)}\n`);
      for (const s of snapshots)
        process.stdout.write(`${JSON.stringify({ ...s, lastUsed: s.lastUsed.toISOString() })}\n`);
      return;
    }
    if (snapshots.length > 0) {
      process.stdout.write(
        `${columns([
          ['HUB MODEL', 'REVISION → COMMIT', 'FILES', 'SIZE', 'LAST USED'],
          ...snapshots.map((s) => [
            s.repo,
            `${s.refs.length > 0 ? `${s.refs.join(', ')} → ` : ''}${s.commit.slice(0, 12)}`,
            String(s.files),
            formatBytes(s.bytes),
            `${formatAge(Date.now() - s.lastUsed.getTime())} ago`,
          ]),
        ])}(in ${hubDir})\n\n`,
      );
    }
    if (entries.length === 0) {
      process.stdout.write(`the compile cache at ${cacheRoot()} is empty\n`);
      return;
    }
    const rows = entries.map((e) => [
      e.key.slice(0, 12),
      e.source,
      Object.entries(e.options)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(' '),
      formatBytes(e.bytes),
      formatAge(e.ageMs),
    ]);
    const header = ['KEY', 'SOURCE', 'OPTIONS', 'SIZE', 'AGE'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    for (const row of [header, ...rows])
      process.stdout.write(
        `${row
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd()}\n`,
      );
  },
});

export const cacheClearCommand = defineCommand({
  name: 'cache clear',
  summary: 'Remove every entry of the compile cache, or one Hub model from the Hub cache.',
  description:
    'Deletes all cached artifacts and any leftovers of interrupted compiles. Artifacts written elsewhere with -o are not touched. ' +
    'With MODEL, deletes only that Hub model (every snapshot and blob of it) from the Hub cache, which Python shares; ' +
    'the compile cache is left as it is.',
  positionals: [
    {
      name: 'MODEL',
      description: 'A Hub model, hf:ORG/NAME (or ORG/NAME), to remove from the Hub cache.',
      required: false,
    },
  ],
  flags: {},
  examples: [
    { command: 'kiln cache clear', note: 'free the disk space the cache uses' },
    { command: 'KILN_CACHE_DIR=/tmp/kiln-cache kiln cache clear', note: 'clear another cache folder' },
    { command: 'kiln cache clear hf:sentence-transformers/all-MiniLM-L6-v2', note: 'remove one Hub model' },
  ],
  async run({ positionals }) {
    const model = positionals.MODEL?.[0];
    if (model !== undefined) {
      const ref = parsePrefixedSource(model) ?? parseBareSource(model);
      if (!ref || model.includes('@'))
        throw new KilnError('KILN_ERR_HUB_INVALID_ID', {
          source: model,
          problem: 'cache clear removes a whole model: give hf:ORG/NAME without @REVISION',
        });
      const hubDir = hubCacheDir();
      const { removed, bytes } = await removeCachedRepo(hubDir, ref.repo);
      process.stdout.write(
        removed
          ? `removed Hub model ${ref.repo} (${formatBytes(bytes)}) from ${hubDir}\n`
          : `Hub model ${ref.repo} is not in ${hubDir}; nothing removed\n`,
      );
      return;
    }
    const { entries, bytes } = await clearCache();
    process.stdout.write(
      `removed ${entries} cache entr${entries === 1 ? 'y' : 'ies'} (${formatBytes(bytes)}) from ${cacheRoot()}\n`,
    );
  },
});

export const cachePathCommand = defineCommand({
  name: 'cache path',
  summary: 'Print the compile cache folder.',
  description: 'Prints $KILN_CACHE_DIR when set, else ~/.cache/kiln.',
  positionals: [],
  flags: {},
  examples: [
    { command: 'kiln cache path', note: 'where compiled artifacts are kept' },
    { command: 'du -sh "$(kiln cache path)"', note: 'how much disk the cache uses' },
  ],
  async run() {
    process.stdout.write(`${cacheRoot()}\n`);
  },
});
