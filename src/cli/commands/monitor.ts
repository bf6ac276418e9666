import { setTimeout as sleep } from 'node:timers/promises';
import { toKilnError } from '../../core/errors.js';
import { fetchStats, type ServerStats } from '../../monitor/poll.js';
import { buildReport } from '../../monitor/report.js';
import { renderTop } from '../../monitor/top.js';
import { defineCommand, type FlagSpec, integer, nonEmpty } from '../table.js';

function period(raw: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(raw.trim());
  const ms = match ? Number(match[1]) * (match[2] === 'ms' ? 1 : 1000) : NaN;
  if (!(ms >= 100 && ms <= 3_600_000)) return integer(100, 3_600_000)(raw, flag);
  return ms;
}

const sharedFlags = {
  url: {
    type: 'string',
    arg: 'URL',
    description: 'The kiln server to watch.',
    default: 'http://127.0.0.1:8080',
    parse: nonEmpty,
  } satisfies FlagSpec<string>,
  period: {
    type: 'string',
    arg: 'T',
    description: 'Time between reports: seconds (2, 2s) or milliseconds (500ms).',
    default: 1000,
    defaultText: '1s',
    parse: period,
  } satisfies FlagSpec<number>,
  'api-key': {
    type: 'string',
    arg: 'KEY',
    env: 'KILN_API_KEY',
    description: 'API key of the server.',
    default: null as string | null,
    defaultText: 'none',
    parse: nonEmpty,
  } satisfies FlagSpec<string | null>,
};

/**
 * Polls /stats every period and hands each report to `emit` (the first poll is the baseline a
 * period is measured against); stops when `stop.stopped` is set or after `count` reports.
 */
async function watch(
  flags: { url: string; period: number; 'api-key': string | null },
  emit: (report: ReturnType<typeof buildReport>) => void,
  stop: { stopped: boolean },
  count?: number,
): Promise<void> {
  let previous: ServerStats | null = null;
  let reports = 0;
  while (!stop.stopped && (count === undefined || reports < count)) {
    try {
      const current = await fetchStats(flags.url, flags['api-key']);
      if (previous) {
        emit(buildReport(flags.url, previous, current, flags.period / 1000));
        reports += 1;
      }
      previous = current;
    } catch (err) {
      emit(buildReport(flags.url, null, null, flags.period / 1000, toKilnError(err).message));
      reports += 1;
      previous = null;
    }
    if (count === undefined || reports < count) await sleep(flags.period);
  }
}

export const monitorCommand = defineCommand({
  name: 'monitor',
  summary: 'Print one JSON report per period about a running server (like neuron-monitor).',
  description:
    "Polls GET /stats of a kiln server and prints one JSON line per period, structured like neuron-monitor's report: " +
    'kiln_runtime_data with replica counters (utilization, batches), execution stats (requests/s, average batch, queue, ' +
    'latency percentiles, error summary) and memory used; system_data; instance_info. Pipe it into a collector. An ' +
    'unreachable server gives a report with "error" set, and monitoring goes on.',
  positionals: [],
  flags: {
    ...sharedFlags,
    count: {
      type: 'string',
      arg: 'N',
      description: 'Stop after N reports.',
      default: undefined as number | undefined,
      defaultText: 'run until interrupted',
      parse: integer(1, 1_000_000),
    },
  },
  examples: [
    {
      command: 'kiln monitor --url http://127.0.0.1:8080 --period 5s >> kiln-metrics.jsonl',
      note: 'a report every 5 s, appended to a file',
    },
    {
      command: "kiln monitor --count 1 | jq '.kiln_runtime_data[0].report.execution_stats.latency_stats'",
      note: 'one report, the latency part',
    },
  ],
  async run({ flags }) {
    const stop = { stopped: false };
    process.once('SIGINT', () => (stop.stopped = true));
    await watch(flags, (report) => process.stdout.write(`${JSON.stringify(report)}\n`), stop, flags.count);
  },
});

export const topCommand = defineCommand({
  name: 'top',
  summary: 'A live terminal view of a running server (like neuron-top).',
  description:
    'Redraws in place every period: per-replica utilization bars, throughput, average batch and padding fill, queue, ' +
    'latency p50/p90/p99 over the last seconds, errors and memory. Quits on q or Ctrl-C. When stdout is not a ' +
    'terminal it prints the same figures as plain lines, one block per period.',
  positionals: [],
  flags: sharedFlags,
  examples: [
    { command: 'kiln top', note: 'watch the server on http://127.0.0.1:8080' },
    { command: 'kiln top --url http://10.0.0.5:8080 --period 2s --api-key "$KEY"', note: 'another host, every 2 s' },
  ],
  async run({ flags }) {
    const stop = { stopped: false };
    const tty = process.stdout.isTTY === true;
    const quit = (): void => {
      stop.stopped = true;
    };
    process.once('SIGINT', quit);
    if (tty && process.stdin.isTTY) {
      process.stdin.setRawMode(true);
      process.stdin.resume();
      process.stdin.on('data', (key: Buffer) => {
        if (key[0] === 0x71 || key[0] === 0x03) quit(); // q or Ctrl-C
      });
      process.stdout.write('\x1b[?25l'); // hide the cursor while drawing
    }
    try {
      await watch(
        flags,
        (report) => {
          const lines = renderTop(report, process.stdout.columns ?? 80);
          if (tty) process.stdout.write(`\x1b[H\x1b[2J${lines.join('\n')}\n`);
          else process.stdout.write(`${lines.filter((l) => l && !l.startsWith('q or')).join('\n')}\n\n`);
        },
        stop,
      );
    } finally {
      if (tty && process.stdin.isTTY) {
        process.stdin.setRawMode(false);
        process.stdin.pause();
        process.stdout.write('\x1b[?25h');
      }
    }
  },
});
