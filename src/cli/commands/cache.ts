import { cacheRoot, clearCache, listEntries } from '../../compiler/cache.js';
import { formatBytes } from '../format.js';
import { defineCommand } from '../table.js';

function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

export const cacheLsCommand = defineCommand({
  name: 'cache ls',
  summary: 'List compiled artifacts in the compile cache.',
  description: 'One line per cache entry: key, source path, compile options, size on disk and age, newest first.',
  positionals: [],
  flags: {
    json: { type: 'boolean', description: 'Print one JSON line per entry.', default: false },
  },
  examples: [
    { command: 'kiln cache ls', note: 'what is cached, and how big it is' },
    { command: 'KILN_CACHE_DIR=/mnt/cache kiln cache ls --json', note: 'another cache folder, machine-readable' },
  ],
  async run({ flags }) {
    const entries = await listEntries();
    if (flags.json) {
      for (const e of entries) process.stdout.write(`${JSON.stringify(e)}\n`);
      return;
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
  summary: 'Remove every entry of the compile cache.',
  description:
    'Deletes all cached artifacts and any leftovers of interrupted compiles. Artifacts written elsewhere with -o are not touched.',
  positionals: [],
  flags: {},
  examples: [
    { command: 'kiln cache clear', note: 'free the disk space the cache uses' },
    { command: 'KILN_CACHE_DIR=/tmp/kiln-cache kiln cache clear', note: 'clear another cache folder' },
  ],
  async run() {
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
