/**
 * `kiln bench --report FILE.html`: one self-contained page (inline SVG and CSS, no scripts from
 * anywhere) with the throughput/latency curve over concurrency, latency histograms and settings.
 */
import type { BenchResult } from './result.js';

const esc = (s: string): string =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : '–');

interface Series {
  name: string;
  color: string;
  points: Array<[number, number]>;
}

/** A line chart with linear axes; x values are spread evenly when `categorical`. */
function lineChart(title: string, xLabel: string, yLabel: string, series: Series[], categorical = true): string {
  const w = 560;
  const h = 260;
  const m = { l: 56, r: 16, t: 28, b: 40 };
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const yMax = Math.max(1e-9, ...series.flatMap((s) => s.points.map((p) => p[1]))) * 1.1;
  const xPos = (x: number): number => {
    const i = xs.indexOf(x);
    const t = categorical
      ? xs.length > 1
        ? i / (xs.length - 1)
        : 0.5
      : (x - xs[0]!) / Math.max(1e-9, xs.at(-1)! - xs[0]!);
    return m.l + t * (w - m.l - m.r);
  };
  const yPos = (y: number): number => h - m.b - (y / yMax) * (h - m.t - m.b);
  const grid = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => {
      const y = yPos(f * yMax);
      return `<line x1="${m.l}" x2="${w - m.r}" y1="${y}" y2="${y}" stroke="#e5e7eb"/><text x="${m.l - 6}" y="${y + 4}" text-anchor="end" font-size="11">${fmt(f * yMax, yMax < 10 ? 2 : 0)}</text>`;
    })
    .join('');
  const ticks = xs
    .map((x) => `<text x="${xPos(x)}" y="${h - m.b + 16}" text-anchor="middle" font-size="11">${x}</text>`)
    .join('');
  const lines = series
    .map((s) => {
      const d = s.points
        .map((p, i) => `${i === 0 ? 'M' : 'L'}${xPos(p[0]).toFixed(1)},${yPos(p[1]).toFixed(1)}`)
        .join(' ');
      const dots = s.points
        .map(
          (p) =>
            `<circle cx="${xPos(p[0])}" cy="${yPos(p[1])}" r="3" fill="${s.color}"><title>${esc(s.name)}: ${fmt(p[1], 2)} at ${p[0]}</title></circle>`,
        )
        .join('');
      return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>${dots}`;
    })
    .join('');
  const legend = series
    .map(
      (s, i) =>
        `<text x="${m.l + 8 + i * 150}" y="${m.t - 10}" font-size="12" fill="${s.color}">■ ${esc(s.name)}</text>`,
    )
    .join('');
  return `<figure><figcaption>${esc(title)}</figcaption><svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(title)}">${grid}${ticks}${lines}${legend}
<text x="${(w + m.l) / 2}" y="${h - 6}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>
<text x="14" y="${(h - m.b + m.t) / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 14 ${(h - m.b + m.t) / 2})">${esc(yLabel)}</text></svg></figure>`;
}

function histogram(title: string, bins: Array<[number, number]>): string {
  const w = 560;
  const h = 180;
  const m = { l: 40, r: 10, t: 20, b: 34 };
  const max = Math.max(1, ...bins.map((b) => b[1]));
  const bw = (w - m.l - m.r) / Math.max(1, bins.length);
  const bars = bins
    .map(([upper, count], i) => {
      const bh = (count / max) * (h - m.t - m.b);
      return `<rect x="${m.l + i * bw + 1}" y="${h - m.b - bh}" width="${Math.max(1, bw - 2)}" height="${bh}" fill="#2563eb"><title>≤ ${fmt(upper, 2)} ms: ${count}</title></rect>`;
    })
    .join('');
  const last = bins.at(-1)?.[0] ?? 0;
  return `<figure><figcaption>${esc(title)}</figcaption><svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(title)}">${bars}
<text x="${m.l}" y="${h - 12}" font-size="11">0 ms</text><text x="${w - m.r}" y="${h - 12}" font-size="11" text-anchor="end">${fmt(last, 2)} ms</text>
<text x="${m.l - 4}" y="${m.t + 4}" font-size="11" text-anchor="end">${max}</text></svg></figure>`;
}

function table(head: string[], rows: Array<Array<string | number>>): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${esc(String(c))}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

export function renderReport(result: BenchResult): string {
  const parts: string[] = [];
  const settings: Array<[string, string]> = [
    ['model', `${result.model}${result.synthetic ? ' (SYNTHETIC weights: predictions are meaningless)' : ''}`],
    ['artifact', result.artifact],
    [
      'data',
      `${result.data.path ?? 'inputs given in code'}: ${result.data.texts} texts, mean ${fmt(result.data.meanTokens)} tokens`,
    ],
    [
      'layout',
      `${result.layout.device ? `${result.layout.device}, ` : ''}${result.layout.replicas} replica(s) × ${result.layout.threadsPerReplica} thread(s), max batch ${result.layout.maxBatch}, max delay ${result.layout.maxDelayMs} ms, buckets ${result.layout.buckets.join(',')}`,
    ],
    [
      'machine',
      `${result.machine.cpu}, ${result.machine.cores} cores; ONNX Runtime ${result.versions.onnxruntime}, kiln ${result.versions.kiln}`,
    ],
    ['target', result.target ?? 'in process (scheduler)'],
    ['date', result.date],
  ];
  parts.push(table(['setting', 'value'], settings));
  if (result.best)
    parts.push(
      `<p class="big">Best: <b>${fmt(result.best.textsPerSecond)} texts/s</b> (${esc(result.best.mode)})${result.cost ? `; <b>$${fmt(result.cost.perMillion, 3)}</b> per million inferences at $${result.cost.pricePerHour}/h` : ''}${result.compare ? `; <b>${fmt(result.compare.speedup)}×</b> the baseline (padded to max length, batch 1, one replica: ${fmt(result.compare.baselineTextsPerSecond)} texts/s)` : ''}</p>`,
    );
  if (result.concurrency?.length) {
    const c = result.concurrency;
    parts.push('<h2>Concurrency (closed loop)</h2>');
    parts.push(
      lineChart('Throughput over concurrency', 'concurrent clients', 'requests/s', [
        { name: 'requests/s', color: '#16a34a', points: c.map((p) => [p.clients, p.requestsPerSecond]) },
      ]),
    );
    parts.push(
      lineChart('Latency over concurrency', 'concurrent clients', 'ms', [
        { name: 'p50', color: '#2563eb', points: c.map((p) => [p.clients, p.latency.p50Ms]) },
        { name: 'p99', color: '#dc2626', points: c.map((p) => [p.clients, p.latency.p99Ms]) },
      ]),
    );
    parts.push(
      table(
        ['clients', 'requests/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'avg batch'],
        c.map((p) => [
          p.clients,
          fmt(p.requestsPerSecond),
          fmt(p.latency.p50Ms, 2),
          fmt(p.latency.p90Ms, 2),
          fmt(p.latency.p99Ms, 2),
          fmt(p.latency.maxMs, 2),
          fmt(p.avgBatch, 1),
        ]),
      ),
    );
    const top = c.at(-1)!;
    parts.push(histogram(`Latency histogram at ${top.clients} clients`, top.latency.bins));
  }
  if (result.throughput?.length) {
    parts.push('<h2>Offline throughput by batch size</h2>');
    parts.push(
      lineChart('Throughput over batch size', 'max batch', 'texts/s', [
        { name: 'texts/s', color: '#9333ea', points: result.throughput.map((p) => [p.batch, p.textsPerSecond]) },
      ]),
    );
    parts.push(
      table(
        ['batch', 'texts/s', 'seconds', 'fill (real/padded tokens)'],
        result.throughput.map((p) => [p.batch, fmt(p.textsPerSecond), fmt(p.seconds, 2), `${fmt(p.fill * 100)} %`]),
      ),
    );
  }
  if (result.latency) {
    const l = result.latency;
    parts.push('<h2>Latency, one request at a time</h2>');
    parts.push(
      table(
        ['requests', 'avg ms', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
        [[l.count, fmt(l.avgMs, 2), fmt(l.p50Ms, 2), fmt(l.p90Ms, 2), fmt(l.p99Ms, 2), fmt(l.maxMs, 2)]],
      ),
    );
    parts.push(histogram('Latency histogram', l.bins));
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kiln bench: ${esc(result.model)}</title>
<style>body{font:14px/1.5 system-ui,sans-serif;max-width:1200px;margin:24px auto;padding:0 16px;color:#111}h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #e5e7eb;padding:4px 10px;text-align:left}th{background:#f9fafb}
figure{display:inline-block;margin:8px 16px 8px 0}figcaption{font-weight:600;margin-bottom:4px}.big{font-size:16px}</style></head>
<body><h1>kiln bench: ${esc(result.model)}</h1>
${parts.join('\n')}
</body></html>
`;
}
