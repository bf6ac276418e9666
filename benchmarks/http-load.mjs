// A small HTTP/1.1 load generator for the overload benchmark: keep-alive TCP connections, one
// request in flight on each, requests encoded once, responses read by status line and
// Content-Length. It is lean on purpose: it shares two cores with the server it measures
// (overload.mjs prints the CPU each used).
//
// Open loop (`openLoop`): requests leave at a constant rate, evenly spaced, whatever the server
// does, and each latency counts from the moment its request was due (not from when a free
// connection took it), so a slow server cannot slow the load down and hide its own delay
// (coordinated omission). That is what "N requests per second" means: autocannon's rate limit
// sends each connection's whole per-second quota at the start of every second instead, so 4× R
// arrived as bursts of hundreds of requests within a millisecond, and the tail it measured was
// mostly the time to parse a burst.
//
// Closed loop (`closedLoop`): C connections, each sending its next request when the previous one
// is answered (the unloaded and sustainable-rate runs, and the memory run).
//
// Every response is tallied by status; 2xx and 429 latencies are kept apart; 429s are checked
// for Retry-After. Nothing is cut at the end: a run stops sending, then waits for every request
// it sent to be answered, to fail, or to time out.
import { connect } from 'node:net';

/** Per-request timeout: generous, so a slow accepted request counts as slow, not lost. */
const TIMEOUT_MS = 30_000;
/** How often the open loop wakes to send what has fallen due. */
const TICK_MS = 1;
const HEADER_END = Buffer.from('\r\n\r\n');

function tally() {
  return {
    ok: [],
    refusedLatency: [],
    status: new Map(),
    retryAfterMissing: 0,
    errors: 0,
    timeouts: 0,
    sent: 0,
    answered: 0,
  };
}

function summary(t, elapsed) {
  const count = (predicate) => [...t.status].filter(([s]) => predicate(s)).reduce((a, [, n]) => a + n, 0);
  return {
    ...t,
    elapsed,
    accepted: t.ok.length,
    refused: count((s) => s === 429),
    serverErrors: count((s) => s >= 500),
    otherStatus: count((s) => !(s >= 200 && s < 300) && s !== 429 && s < 500),
  };
}

function record(t, status, headers, latency) {
  t.answered += 1;
  t.status.set(status, (t.status.get(status) ?? 0) + 1);
  if (status >= 200 && status < 300) t.ok.push(latency);
  else if (status === 429) {
    t.refusedLatency.push(latency);
    if (!/\r\nretry-after:/i.test(headers)) t.retryAfterMissing += 1;
  }
}

/** One keep-alive connection carrying one request at a time. */
class Connection {
  constructor(url, t, onIdle) {
    this.t = t;
    this.onIdle = onIdle;
    this.current = null;
    this.chunks = [];
    this.socket = connect({ host: url.hostname, port: Number(url.port), noDelay: true });
    this.socket.on('data', (chunk) => this.receive(chunk));
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => {
      this.closed = true;
      this.finish((_c) => (this.t.errors += 1));
    });
    this.socket.setTimeout(TIMEOUT_MS, () => {
      if (this.current) this.finish(() => (this.t.timeouts += 1));
      this.socket.destroy();
    });
  }

  send(bytes, dueAt, resolve) {
    this.current = { dueAt, resolve };
    this.t.sent += 1;
    this.socket.write(bytes);
  }

  receive(chunk) {
    this.chunks.push(chunk);
    const data = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks);
    this.chunks = [data];
    const end = data.indexOf(HEADER_END);
    if (end === -1) return;
    const headers = data.toString('latin1', 0, end);
    const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(headers)?.[1] ?? 0);
    if (data.length < end + 4 + length) return;
    this.chunks = [];
    const status = Number(headers.slice(9, 12));
    const latency = performance.now() - (this.current?.dueAt ?? 0);
    this.finish(() => record(this.t, status, headers, latency));
    if (/\r\nconnection:\s*close/i.test(headers)) this.socket.destroy();
    else this.onIdle(this);
  }

  finish(count) {
    const current = this.current;
    if (!current) return;
    this.current = null;
    count();
    current.resolve();
  }

  close() {
    this.socket.destroy();
  }
}

/** Requests to POST `bodies[i % n]` at `path`, as raw HTTP/1.1 bytes. */
function encode(url, path, bodies) {
  return bodies.map((body) => {
    const payload = Buffer.from(body);
    const head = `POST ${path} HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\ncontent-length: ${payload.length}\r\n\r\n`;
    return Buffer.concat([Buffer.from(head, 'latin1'), payload]);
  });
}

/** Connections up to `max`; a request finding none free waits its turn (timed from due all the same). */
function pool(url, t, max) {
  const idle = [];
  const waiting = [];
  const all = new Set();
  const onIdle = (c) => {
    const next = waiting.shift();
    if (next) next(c);
    else idle.push(c);
  };
  const open = () => {
    const c = new Connection(url, t, onIdle);
    all.add(c);
    c.socket.on('close', () => {
      all.delete(c);
      const i = idle.indexOf(c);
      if (i !== -1) idle.splice(i, 1);
      // A request waiting for a connection gets a new one in place of the closed one.
      if (waiting.length > 0) waiting.shift()(open());
    });
    return c;
  };
  return {
    /** Opens `count` connections ahead of a run, so connecting is not timed as the server's latency. */
    async warm(count) {
      const fresh = Array.from({ length: Math.max(0, Math.min(count, max) - all.size) }, () => open());
      await Promise.all(
        fresh.map(
          (c) =>
            new Promise((resolve) =>
              c.socket.connecting ? c.socket.once('connect', resolve).once('close', resolve) : resolve(),
            ),
        ),
      );
      for (const c of fresh) if (!c.closed) idle.push(c);
    },
    acquire(use) {
      let c = idle.pop();
      while (c?.closed) c = idle.pop();
      if (c) use(c);
      else if (all.size < max) use(open());
      else waiting.push(use);
    },
    close() {
      for (const c of all) c.close();
    },
  };
}

function sender(url, path, bodies, t, connections) {
  const target = new URL(url);
  const requests = encode(target, path, bodies);
  const connectionPool = pool(target, t, connections);
  let next = 0;
  const send = (dueAt) =>
    new Promise((resolve) => {
      const bytes = requests[next++ % requests.length];
      connectionPool.acquire((c) => c.send(bytes, dueAt, resolve));
    });
  return { send, warm: (count) => connectionPool.warm(count), close: () => connectionPool.close() };
}

/** `rate` requests per second, evenly spaced, for `seconds`, over at most `connections` sockets. */
export async function openLoop(url, bodies, { rate, seconds, connections, path = '/predict' }) {
  const t = tally();
  const { send, warm, close } = sender(url, path, bodies, t, connections);
  await warm(connections);
  const pending = [];
  const total = Math.round(rate * seconds);
  const started = performance.now();
  await new Promise((resolve) => {
    let i = 0;
    const tick = () => {
      const now = performance.now();
      // Everything due by now leaves now, each timed from its own due moment.
      while (i < total && started + (i * 1000) / rate <= now) {
        pending.push(send(started + (i * 1000) / rate));
        i += 1;
      }
      if (i < total) setTimeout(tick, TICK_MS);
      else resolve();
    };
    tick();
  });
  await Promise.all(pending);
  close();
  return summary(t, (performance.now() - started) / 1000);
}

/** `connections` clients each sending its next request when the last is answered, for `seconds` or `amount` requests in all. */
export async function closedLoop(url, bodies, { connections, seconds, amount, path = '/predict' }) {
  const t = tally();
  const { send, warm, close } = sender(url, path, bodies, t, connections);
  await warm(connections);
  const started = performance.now();
  const endAt = seconds === undefined ? Infinity : started + seconds * 1000;
  let budget = amount ?? Infinity;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (budget > 0 && performance.now() < endAt) {
        budget -= 1;
        await send(performance.now());
      }
    }),
  );
  close();
  return summary(t, (performance.now() - started) / 1000);
}
