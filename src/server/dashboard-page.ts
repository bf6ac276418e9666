/**
 * The page `GET /dashboard` serves: one self-contained HTML document (inline CSS and JS, plain
 * <canvas> charts, no libraries, no URL outside the server), so it works offline and behind a
 * firewall, and a strict Content-Security-Policy can pin its script and style by hash.
 *
 * It polls `GET /stats` (relative to the page, so a path prefix added by a proxy still works)
 * once a second and keeps two minutes of samples. Rates come from deltas between snapshots, on
 * the server's clock (`uptimeMs`), so a slow or throttled browser does not skew them. Every chart
 * element carries its newest values (`data-latest`, `data-latest-<series>`) and its sample count
 * (`data-points`) for tests and for scraping the page.
 */

/** The stylesheet, inlined in a <style> element. */
export const DASHBOARD_STYLE = `
:root { color-scheme: light dark; --bg: #fafafa; --card: #fff; --fg: #1d1d1f; --muted: #6e6e73; --grid: #e3e3e8; --bad: #b3261e;
  --c0: #1f6feb; --c1: #d9480f; --c2: #2b8a3e; --c3: #9c36b5; --c4: #c2255c; --c5: #0b7285; --c6: #e67700; --c7: #5c5f66; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #111214; --card: #1b1c1f; --fg: #ececf0; --muted: #9a9aa3; --grid: #2c2d31; --bad: #ff8a80;
    --c0: #58a6ff; --c1: #ff922b; --c2: #69db7c; --c3: #da77f2; --c4: #f783ac; --c5: #66d9e8; --c6: #ffd43b; --c7: #adb5bd; }
}
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 20px 24px; background: var(--bg); color: var(--fg); font: 14px/1.4 system-ui, sans-serif; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 16px; }
h1 { margin: 0; font-size: 20px; font-weight: 600; }
#layout, footer { color: var(--muted); }
#status { margin-left: auto; color: var(--muted); }
#status[data-state="error"] { color: var(--bad); font-weight: 600; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap: 8px; margin: 14px 0; }
.figure { background: var(--card); border: 1px solid var(--grid); border-radius: 6px; padding: 8px 10px; }
.figure .label { display: block; color: var(--muted); font-size: 12px; }
.figure .value { font-size: 22px; font-variant-numeric: tabular-nums; }
.figure .unit { color: var(--muted); margin-left: 3px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 12px; }
.chart { margin: 0; background: var(--card); border: 1px solid var(--grid); border-radius: 6px; padding: 8px 10px; }
.chart figcaption { display: flex; flex-wrap: wrap; gap: 2px 12px; align-items: baseline; }
.chart .title { font-weight: 600; }
.chart .legend { color: var(--muted); font-size: 12px; display: flex; flex-wrap: wrap; gap: 2px 10px; }
.chart .swatch { display: inline-block; width: 10px; height: 3px; margin-right: 4px; vertical-align: middle; }
.chart canvas { display: block; width: 100%; height: 170px; margin-top: 6px; }
footer { margin-top: 14px; font-size: 12px; }
`;

/** The client, inlined in a <script> element. Plain JS for any current browser; no backticks or `${` here. */
// biome-ignore lint/complexity/noUselessStringRaw: raw keeps the client's regex backslashes as written, if one is added.
export const DASHBOARD_SCRIPT = String.raw`
'use strict';
(() => {
  const PERIOD_MS = 1000;
  const WINDOW_S = 120;
  // A sample further than this from the previous one starts a new line segment (a missed poll).
  const GAP_S = 3.5;

  // The key the page was opened with goes to /stats as a header, not into more URLs.
  const key = new URLSearchParams(location.search).get('key');
  const headers = key ? { authorization: 'Bearer ' + key } : {};

  const $ = (id) => document.getElementById(id);
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  function format(value, digits) {
    if (value === null || !Number.isFinite(value)) return '–';
    return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  }

  /** The gridline step for values up to max: the smallest round step (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10^n) that fits four. */
  function gridStep(max, integer) {
    const wanted = Math.max(max / 4, integer ? 1 : 0);
    if (!(wanted > 0)) return integer ? 1 : 0.25;
    const magnitude = Math.pow(10, Math.floor(Math.log10(wanted)));
    for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8]) {
      const step = m * magnitude;
      if (wanted <= step * (1 + 1e-9) && (!integer || Number.isInteger(step))) return step;
    }
    return 10 * magnitude;
  }

  /** Decimals that show a gridline step exactly (0.25 → 2, 150 → 0). */
  function decimalsOf(step) {
    let digits = 0;
    while (digits < 4 && Math.abs(step * Math.pow(10, digits) - Math.round(step * Math.pow(10, digits))) > 1e-6) digits += 1;
    return digits;
  }

  class Chart {
    /**
     * element: the <figure>; unit: shown on the axis; digits: decimals of labels;
     * fixedMax: a y range that does not follow the data (percentages); integer: values are
     * counts, so gridlines are too; primary: reduces a sample's values to the one number
     * data-latest reports.
     */
    constructor(element, options) {
      this.element = element;
      this.canvas = element.querySelector('canvas');
      this.legend = element.querySelector('.legend');
      this.unit = options.unit;
      this.digits = options.digits;
      this.fixedMax = options.fixedMax || null;
      this.integer = options.integer || false;
      this.primary = options.primary || ((values) => values[0]);
      this.samples = [];
      this.setSeries(options.series || []);
    }

    setSeries(names) {
      this.series = names;
      this.samples = [];
      this.legend.replaceChildren(
        ...names.map((name, i) => {
          const item = document.createElement('span');
          const swatch = document.createElement('span');
          swatch.className = 'swatch';
          swatch.style.background = 'var(--c' + (i % 8) + ')';
          item.append(swatch, name);
          return item;
        }),
      );
    }

    /** t: seconds on the server's clock; values: one number (or null: no data) per series. */
    push(t, values) {
      this.samples.push({ t, values });
      while (this.samples.length > 0 && this.samples[0].t < t - WINDOW_S) this.samples.shift();
      const latest = this.primary(values);
      const data = this.element.dataset;
      data.latest = latest === null ? '' : String(latest);
      data.points = String(this.samples.filter((s) => this.primary(s.values) !== null).length);
      this.series.forEach((name, i) => {
        data['latest' + name.replace(/(^|[^a-z0-9]+)([a-z0-9])/gi, (_, __, c) => c.toUpperCase())] = values[i] === null ? '' : String(values[i]);
      });
      this.canvas.setAttribute('aria-label', this.element.querySelector('.title').textContent + ': ' + format(latest, this.digits) + ' ' + this.unit);
      this.draw();
    }

    clear() {
      this.samples = [];
      this.element.dataset.points = '0';
      this.element.dataset.latest = '';
      this.draw();
    }

    draw() {
      const canvas = this.canvas;
      const ratio = window.devicePixelRatio || 1;
      const width = canvas.clientWidth;
      const height = canvas.clientHeight;
      if (width === 0 || height === 0) return;
      if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
        canvas.width = Math.round(width * ratio);
        canvas.height = Math.round(height * ratio);
      }
      const g = canvas.getContext('2d');
      g.setTransform(ratio, 0, 0, ratio, 0, 0);
      g.clearRect(0, 0, width, height);
      g.font = '11px system-ui, sans-serif';

      let max = 0;
      for (const s of this.samples) for (const v of s.values) if (v !== null && v > max) max = v;
      const step = this.fixedMax ? this.fixedMax / 4 : gridStep(max, this.integer);
      const top = 4 * step;
      const labelDigits = decimalsOf(step);
      const left = 44;
      const right = width - 6;
      const bottom = height - 16;
      const upper = 6;
      const now = this.samples.length > 0 ? this.samples[this.samples.length - 1].t : WINDOW_S;
      const x = (t) => right - ((now - t) / WINDOW_S) * (right - left);
      const y = (v) => bottom - (Math.min(v, top) / top) * (bottom - upper);

      g.strokeStyle = css('--grid');
      g.fillStyle = css('--muted');
      g.lineWidth = 1;
      g.textAlign = 'right';
      g.textBaseline = 'middle';
      for (let i = 0; i <= 4; i += 1) {
        const v = step * i;
        const py = Math.round(y(v)) + 0.5;
        g.beginPath();
        g.moveTo(left, py);
        g.lineTo(right, py);
        g.stroke();
        g.fillText(format(v, labelDigits), left - 6, py);
      }
      g.textBaseline = 'alphabetic';
      g.textAlign = 'left';
      g.fillText('-2 min', left, height - 3);
      g.textAlign = 'center';
      g.fillText('-1 min', (left + right) / 2, height - 3);
      g.textAlign = 'right';
      g.fillText('now', right, height - 3);

      g.lineWidth = 1.75;
      g.lineJoin = 'round';
      this.series.forEach((_, i) => {
        g.strokeStyle = css('--c' + (i % 8));
        g.beginPath();
        let previous = null;
        for (const s of this.samples) {
          const v = s.values[i];
          if (v === null || v === undefined) {
            previous = null;
            continue;
          }
          if (previous === null || s.t - previous > GAP_S) g.moveTo(x(s.t), y(v));
          else g.lineTo(x(s.t), y(v));
          previous = s.t;
        }
        g.stroke();
      });
    }
  }

  const mean = (values) => {
    const known = values.filter((v) => v !== null);
    return known.length === 0 ? null : known.reduce((a, b) => a + b, 0) / known.length;
  };
  const charts = {
    throughput: new Chart($('chart-throughput'), { unit: 'req/s', digits: 1, series: ['completed'] }),
    latency: new Chart($('chart-latency'), { unit: 'ms', digits: 1, series: ['p50', 'p99'], primary: (v) => v[1] }),
    queue: new Chart($('chart-queue'), { unit: 'texts', digits: 0, integer: true, series: ['queued'] }),
    utilization: new Chart($('chart-utilization'), { unit: '%', digits: 0, fixedMax: 100, primary: mean }),
  };

  function setStatus(state, text) {
    const status = $('status');
    status.dataset.state = state;
    status.textContent = text;
  }

  function setFigure(id, value, digits) {
    $('now-' + id).textContent = format(value, digits);
  }

  let previous = null;

  function update(stats) {
    const s = stats.scheduler;
    const t = s.uptimeMs / 1000;
    const replicaIds = s.replicas.map((r) => 'replica ' + r.id);
    // A restarted server or a reloaded model starts a new clock: old samples no longer line up.
    if (previous && (s.uptimeMs < previous.uptimeMs || stats.model !== previous.model || replicaIds.join() !== charts.utilization.series.join())) {
      previous = null;
      for (const chart of Object.values(charts)) chart.clear();
    }
    if (replicaIds.join() !== charts.utilization.series.join()) charts.utilization.setSeries(replicaIds);

    const dt = previous ? (s.uptimeMs - previous.uptimeMs) / 1000 : 0;
    const throughput = dt > 0 ? (s.completed - previous.completed) / dt : null;
    const busy = s.replicas.map((r, i) => (dt > 0 ? Math.max(0, Math.min(100, ((r.busyMs - previous.busyMs[i]) / (dt * 1000)) * 100)) : null));
    const recent = s.recent;
    const p50 = recent.count > 0 ? recent.p50Ms : null;
    const p99 = recent.count > 0 ? recent.p99Ms : null;

    charts.throughput.push(t, [throughput]);
    charts.latency.push(t, [p50, p99]);
    charts.queue.push(t, [s.queueDepth]);
    charts.utilization.push(t, busy);

    $('model').textContent = stats.model;
    const l = stats.layout;
    $('layout').textContent =
      (l.device ? l.device + ': ' : '') + l.replicas + ' replica' + (l.replicas === 1 ? '' : 's') + ' × ' + l.threadsPerReplica + ' thread' + (l.threadsPerReplica === 1 ? '' : 's') +
      ', max batch ' + l.maxBatch + ', max delay ' + l.maxDelayMs + ' ms · up ' + format(t / 60, 1) + ' min';
    setFigure('throughput', throughput, 1);
    setFigure('p50', p50, 1);
    setFigure('p99', p99, 1);
    setFigure('queue', s.queueDepth, 0);
    setFigure('busy', mean(busy), 0);
    setFigure('completed', s.completed, 0);
    setFigure('errors', s.failed + s.rejected, 0);
    setFigure('rss', stats.process ? stats.process.rssBytes / 2 ** 20 : null, 0);
    setStatus('ok', 'updated ' + new Date().toLocaleTimeString());
    previous = { model: stats.model, uptimeMs: s.uptimeMs, completed: s.completed, busyMs: s.replicas.map((r) => r.busyMs) };
  }

  async function explain(res) {
    if (res.status === 401) return 'the API key is missing or wrong: open this page as /dashboard?key=YOUR_KEY';
    try {
      const body = await res.json();
      return 'GET /stats answered ' + res.status + ': ' + (body.error && (body.error.message || body.error));
    } catch {
      return 'GET /stats answered ' + res.status;
    }
  }

  async function poll() {
    const started = performance.now();
    try {
      const res = await fetch('stats', { headers, cache: 'no-store' });
      if (res.ok) update(await res.json());
      else setStatus('error', await explain(res));
    } catch (err) {
      setStatus('error', 'cannot reach the server (' + err.message + '); retrying every second');
    }
    setTimeout(poll, Math.max(0, PERIOD_MS - (performance.now() - started)));
  }

  window.addEventListener('resize', () => {
    for (const chart of Object.values(charts)) chart.draw();
  });
  poll();
})();
`;

function figure(id: string, label: string, unit: string): string {
  return `<div class="figure"><span class="label">${label}</span><span class="value" id="now-${id}">–</span><span class="unit">${unit}</span></div>`;
}

function chart(id: string, title: string, unit: string): string {
  return (
    `<figure class="chart" id="chart-${id}" data-points="0" data-latest="">` +
    `<figcaption><span class="title">${title}</span><span class="legend"></span></figcaption>` +
    `<canvas role="img" aria-label="${title} (${unit})"></canvas></figure>`
  );
}

/** The whole page. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>kiln dashboard</title>
<link rel="icon" href="data:,">
<style>${DASHBOARD_STYLE}</style>
</head>
<body>
<header>
<h1>kiln · <span id="model">…</span></h1>
<span id="layout"></span>
<span id="status" role="status" data-state="connecting">connecting…</span>
</header>
<section class="figures" aria-label="current figures">
${figure('throughput', 'throughput', 'req/s')}
${figure('p50', 'latency p50', 'ms')}
${figure('p99', 'latency p99', 'ms')}
${figure('queue', 'queue', 'texts')}
${figure('busy', 'replicas busy', '%')}
${figure('completed', 'completed', '')}
${figure('errors', 'failed + rejected', '')}
${figure('rss', 'memory (RSS)', 'MiB')}
</section>
<main class="charts">
${chart('throughput', 'Throughput (req/s)', 'req/s')}
${chart('latency', 'Latency, last 10 s (ms)', 'ms')}
${chart('queue', 'Queue depth (texts)', 'texts')}
${chart('utilization', 'Replica utilization (%)', '%')}
</main>
<footer>Polls GET /stats every second; charts cover the last 2 minutes. Throughput and utilization are over the last second, latency percentiles over the server's last 10 s.</footer>
<script>${DASHBOARD_SCRIPT}</script>
</body>
</html>
`;
