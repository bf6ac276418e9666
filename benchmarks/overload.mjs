// The production-server issue's "under pressure" figures: `kiln serve` on the embedded model,
// driven over loopback (`http-load.mjs`) at 4× its sustainable rate (0 crashes, 0 5xx, every
// accepted request answered, the excess answered 429, p99 of accepted ≤ 5× the unloaded p99),
// then its resident memory over a long run at the sustainable rate (stable within ± 10 %).
//   npm run bench:overload -- [--seconds 60] [--requests 100000] [--max-queue 8] [--max-queue-ms 5]
//     [--replicas N] [--max-batch N] [--pipeline N] [--replica-nice N]   (passed to kiln serve; unset: its defaults)
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { closedLoop, openLoop } from './http-load.mjs';
import { CLI, mib, ROOT, scratch, sst2Sentences } from './lib.mjs';

const MODEL = join(ROOT, 'models', 'sst2-distilbert-tiny');
const SENTENCES = 8;
const UNLOADED = { connections: 1, seconds: 10 };
const SUSTAINED = { connections: 8, seconds: 10 };
const OVERLOAD_FACTOR = 4;
// The first seconds of the first overload after start are slower than the rest (code paths the
// closed-loop runs never took, such as refusals, run for the first time): measured and printed
// apart as the onset, then a pause, then the overload the targets are checked on.
const ONSET = { seconds: 3, pauseMs: 2000 };
// Sockets the open loop may hold: far more than the requests in flight at 4× R, so requests
// never wait for a free connection on the client's side (they would be timed from due anyway).
const OVERLOAD_CONNECTIONS = 200;
const READY_TIMEOUT_MS = 300_000;
const RSS_SAMPLE_MS = 500;

const { values: flags } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    requests: { type: 'string', default: '100000' },
    // The bounds README recommends for overload: a short queue, refused once the wait passes 5 ms.
    'max-queue': { type: 'string', default: '8' },
    'max-queue-ms': { type: 'string', default: '5' },
    'max-batch': { type: 'string', default: '' },
    'replica-nice': { type: 'string', default: '' },
    pipeline: { type: 'string', default: '' },
    replicas: { type: 'string', default: '' },
  },
});
const positive = (name, help) => {
  const raw = flags[name];
  if (!/^[1-9][0-9]*$/.test(raw)) {
    console.error(`--${name} must be a positive integer (${help}), got "${raw}"`);
    process.exit(1);
  }
  return Number(raw);
};
const seconds = positive('seconds', 'how long the overload lasts');
const totalRequests = positive('requests', 'how many requests the memory run sends');
const maxQueue = positive('max-queue', "the server's queue bound");

const note = (line) => process.stderr.isTTY && process.stderr.write(`${line}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ms = (v) => `${v.toFixed(1)} ms`;
const rate = (v) => `${v.toFixed(0)} req/s`;
const verdict = (ok) => (ok ? 'PASS' : 'FAIL');

/** Nearest-rank percentile of unsorted values (exact: at most a few hundred thousand of them). */
function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length;

/** The flags passed on to kiln serve, as given (unset ones and --max-queue-ms 0 stay kiln serve's defaults). */
const SERVE_FLAGS = ['max-queue-ms', 'max-batch', 'replica-nice', 'pipeline', 'replicas'];
const serveFlags = SERVE_FLAGS.filter(
  (name) => flags[name] !== '' && !(name === 'max-queue-ms' && Number(flags[name]) === 0),
);

/** `kiln serve` as a child process on a free loopback port; resolves once GET /ping answers 200. */
async function startServer(cacheDir) {
  const child = spawn(
    process.execPath,
    [
      CLI,
      'serve',
      MODEL,
      '--host',
      '127.0.0.1',
      '--max-queue',
      String(maxQueue),
      ...serveFlags.flatMap((name) => [`--${name}`, flags[name]]),
    ],
    {
      env: { ...process.env, PORT: '0', KILN_CACHE_DIR: cacheDir },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let log = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => (log = (log + chunk).slice(-8192)));
  const url = await new Promise((resolve, reject) => {
    const onData = () => {
      const match = /listening on (http:\/\/\S+)/.exec(log);
      if (match) {
        child.stderr.off('data', onData);
        child.off('exit', onExit);
        resolve(match[1]);
      }
    };
    const onExit = (code, signal) =>
      reject(new Error(`kiln serve exited (${signal ?? code}) before listening:\n${log}`));
    child.stderr.on('data', onData);
    child.on('exit', onExit);
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`kiln serve exited while loading:\n${log}`);
    const status = await fetch(`${url}/ping`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) break;
    if (Date.now() > deadline) throw new Error(`kiln serve not ready after ${READY_TIMEOUT_MS / 1000} s:\n${log}`);
    await sleep(200);
  }
  return { child, url, log: () => log, alive: () => child.exitCode === null && child.signalCode === null };
}

/** CPU seconds of one /proc stat file (Linux; null elsewhere or once the thread is gone). */
async function statSeconds(file) {
  const stat = await readFile(file, 'utf8').catch(() => null);
  if (stat === null) return null;
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th, in 1/100 s.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds of the whole process and of its main thread (HTTP, JSON, tokenizing, scheduling). */
async function cpuSeconds(pid) {
  const [all, main] = await Promise.all([
    statSeconds(`/proc/${pid}/stat`),
    statSeconds(`/proc/${pid}/task/${pid}/stat`),
  ]);
  return all === null || main === null ? null : { all, main };
}

async function stats(url) {
  const response = await fetch(`${url}/stats`);
  if (!response.ok) throw new Error(`GET /stats answered ${response.status}`);
  return response.json();
}

/** Waits for the server's queue and replicas to empty, so its counters are final. */
async function settled(url) {
  for (let i = 0; i < 100; i += 1) {
    const s = await stats(url);
    if (s.scheduler.queueDepth === 0 && s.scheduler.inFlight === 0) return s;
    await sleep(100);
  }
  return stats(url);
}

const bodies = (await sst2Sentences(SENTENCES)).map((text) => JSON.stringify({ text }));
const cores = availableParallelism();
const loadAtStart = loadavg()[0];
const { dir, cleanup } = await scratch('kiln-bench-overload-');
const server = await startServer(join(dir, 'cache'));
const killServer = () => server.alive() && server.child.kill('SIGKILL');
process.on('exit', killServer);
try {
  const { layout } = await stats(server.url);
  note(`kiln serve ready at ${server.url}; warming up`);
  await closedLoop(server.url, bodies, { connections: SUSTAINED.connections, seconds: 2 });

  note(`unloaded: ${UNLOADED.connections} connection(s) for ${UNLOADED.seconds} s`);
  const unloaded = await closedLoop(server.url, bodies, UNLOADED);
  const unloadedP99 = percentile(unloaded.ok, 99);

  note(`sustainable rate: ${SUSTAINED.connections} connections for ${SUSTAINED.seconds} s`);
  const sustained = await closedLoop(server.url, bodies, SUSTAINED);
  const sustainable = sustained.accepted / sustained.elapsed;

  const offered = Math.round(OVERLOAD_FACTOR * sustainable);
  note(`onset: ${rate(offered)} for ${ONSET.seconds} s`);
  const onset = await openLoop(server.url, bodies, {
    rate: offered,
    seconds: ONSET.seconds,
    connections: OVERLOAD_CONNECTIONS,
  });
  await sleep(ONSET.pauseMs);
  note(`overload: ${rate(offered)} for ${seconds} s`);
  const before = (await settled(server.url)).scheduler;
  const serverCpuBefore = await cpuSeconds(server.child.pid);
  const benchCpuBefore = process.cpuUsage();
  const over = await openLoop(server.url, bodies, { rate: offered, seconds, connections: OVERLOAD_CONNECTIONS });
  const benchCpu = Object.values(process.cpuUsage(benchCpuBefore)).reduce((a, b) => a + b, 0) / 1e6 / over.elapsed;
  const serverCpuAfter = await cpuSeconds(server.child.pid);
  const serverCpu =
    serverCpuBefore === null || serverCpuAfter === null
      ? null
      : {
          all: (serverCpuAfter.all - serverCpuBefore.all) / over.elapsed,
          main: (serverCpuAfter.main - serverCpuBefore.main) / over.elapsed,
        };
  const overAlive = server.alive();
  // The server's own view of the last 10 s of the overload: queue + compute, without HTTP.
  const serverRecent = overAlive ? (await stats(server.url)).scheduler.recent : null;
  const after = overAlive ? (await settled(server.url)).scheduler : null;
  const overP99 = percentile(over.ok, 99);
  const refusedP99 = percentile(over.refusedLatency, 99);

  note(`memory: ${totalRequests} requests, ${SUSTAINED.connections} connections`);
  const rss = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling && server.alive()) {
      const s = await stats(server.url).catch(() => null);
      if (s) rss.push(s.process.rssBytes);
      await sleep(RSS_SAMPLE_MS);
    }
  })();
  const long = await closedLoop(server.url, bodies, { connections: SUSTAINED.connections, amount: totalRequests });
  sampling = false;
  await sampler;
  const memAlive = server.alive();
  const final = memAlive ? (await settled(server.url)).scheduler : null;

  const crashes = (overAlive ? 0 : 1) + (memAlive ? 0 : 1);
  const restarts = final ? final.replicas.reduce((a, r) => a + r.failures, 0) : NaN;
  const completed = after ? after.completed - before.completed : NaN;
  const submitted = after ? after.submitted - before.submitted : NaN;
  const rejected = after ? after.rejected - before.rejected : NaN;
  const failed = after ? after.failed - before.failed : NaN;
  const batches = after ? after.batches - before.batches : NaN;
  const busyMs = after
    ? after.replicas.reduce((a, r) => a + r.busyMs, 0) - before.replicas.reduce((a, r) => a + r.busyMs, 0)
    : NaN;
  // The client waits for every request it sent, so the server's counters and the client's must agree exactly.
  const everyAnswered =
    submitted === completed &&
    failed === 0 &&
    completed === over.accepted &&
    over.answered === over.sent &&
    over.errors === 0 &&
    over.timeouts === 0;
  const excessRefused =
    over.refused > 0 && rejected === over.refused && over.retryAfterMissing === 0 && over.otherStatus === 0;
  const warm = rss.slice(Math.floor(rss.length / 10));
  const tail = rss.slice(rss.length - Math.max(1, Math.floor(rss.length / 10)));
  const drift = mean(tail) / mean(warm) - 1;

  const lines = [
    `overload: kiln serve ${layout.replicas} replica(s) × ${layout.threadsPerReplica} thread(s), max batch ${layout.maxBatch}, --max-queue ${maxQueue}${serveFlags.map((name) => `, --${name} ${flags[name]}`).join('')}; ${cores} cores, load ${loadAtStart.toFixed(1)} at start; loopback`,
    `  unloaded (${UNLOADED.connections} connection, ${UNLOADED.seconds} s): ${rate(unloaded.accepted / unloaded.elapsed)}, p50 ${ms(percentile(unloaded.ok, 50))}, p99 ${ms(unloadedP99)}`,
    `  sustainable rate R (${SUSTAINED.connections} connections, ${SUSTAINED.seconds} s): ${rate(sustainable)}, p99 ${ms(percentile(sustained.ok, 99))}, refused ${sustained.refused}`,
    `  overload at ${OVERLOAD_FACTOR}× R = ${rate(offered)} offered open loop, evenly spaced, ${seconds} s (${over.elapsed.toFixed(1)} s until the last answer); CPU: server ${serverCpu === null ? 'n/a' : `${serverCpu.all.toFixed(2)} cores (main thread ${serverCpu.main.toFixed(2)})`}, load generator ${benchCpu.toFixed(2)} cores):`,
    `    onset (the first ${ONSET.seconds} s at 4× R after start, not part of the targets): p99 accepted ${ms(percentile(onset.ok, 99))}, p99 refused ${ms(percentile(onset.refusedLatency, 99))}; 5xx ${onset.serverErrors}, errors ${onset.errors}; then ${ONSET.pauseMs / 1000} s idle`,
    `    sent ${over.sent} (${rate(over.sent / seconds)}, ${(over.sent / seconds / sustainable).toFixed(2)}× R); accepted ${over.accepted} (${rate(over.accepted / seconds)}, ${(over.accepted / seconds / sustainable).toFixed(2)}× R)`,
    `    excess answered 429: ${over.refused} (${rate(over.refused / seconds)}, p50 ${ms(percentile(over.refusedLatency, 50))}, p99 ${ms(percentile(over.refusedLatency, 99))}), server rejected ${rejected}, without Retry-After ${over.retryAfterMissing}, other 4xx ${over.otherStatus} (target: all excess 429: ${verdict(excessRefused)})`,
    `    5xx: ${over.serverErrors} (target 0: ${verdict(over.serverErrors === 0)})`,
    `    every accepted answered: server accepted ${submitted}, completed ${completed}, failed ${failed}; client sent ${over.sent}, answered ${over.answered}, 2xx ${over.accepted}, errors ${over.errors}, timeouts ${over.timeouts} (${verdict(everyAnswered)})`,
    `    p99 accepted ${ms(overP99)} = ${(overP99 / unloadedP99).toFixed(2)}× unloaded p99 (p50 ${ms(percentile(over.ok, 50))}; target ≤ ${5}×: ${verdict(overP99 <= 5 * unloadedP99)})`,
    `    p99 refused ${ms(refusedP99)} = ${(refusedP99 / unloadedP99).toFixed(2)}× unloaded p99: the HTTP path alone (a refusal never reaches the queue or a replica)`,
    `    in the server (queue + compute, last ${serverRecent ? serverRecent.windowMs / 1000 : '?'} s): ${serverRecent ? `p50 ${ms(serverRecent.p50Ms)}, p99 ${ms(serverRecent.p99Ms)}` : 'n/a'}; ${batches} batches, mean size ${(completed / batches).toFixed(1)}, mean compute ${ms(busyMs / batches)} per batch`,
    `  crashes: ${crashes}, replica restarts ${restarts} (target 0: ${verdict(crashes === 0 && restarts === 0)})`,
    `  RSS over ${long.sent} requests (${rate(long.accepted / long.elapsed)}, ${long.elapsed.toFixed(0)} s, ${rss.length} samples; non-2xx ${long.answered - long.accepted}, errors ${long.errors}):`,
    `    first ${mib(rss[0])}, after warm-up ${mib(mean(warm))}, last 10 % ${mib(mean(tail))}, range ${mib(Math.min(...warm))}–${mib(Math.max(...warm))}: ${drift >= 0 ? '+' : ''}${(drift * 100).toFixed(1)} % (target ± 10 %: ${verdict(Math.abs(drift) <= 0.1)})`,
  ];
  console.log(lines.join('\n'));
  if (crashes > 0) console.error(`kiln serve died; its last output:\n${server.log()}`);
} finally {
  if (server.alive()) {
    const exited = new Promise((r) => server.child.once('exit', r));
    server.child.kill('SIGTERM');
    await exited;
  }
  await cleanup();
}
