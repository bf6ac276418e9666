/**
 * `GET /dashboard`: a live page of throughput, latency, queue and replica utilization, drawn by
 * the browser from `GET /stats`. Static, so it answers while the model loads (the page then says
 * so). Its Content-Security-Policy allows only its own inline script and style (pinned by hash)
 * and requests to this server: nothing it shows can pull in, or leak to, another origin.
 */
import { createHash } from 'node:crypto';
import { DASHBOARD_HTML, DASHBOARD_SCRIPT, DASHBOARD_STYLE } from '../dashboard-page.js';
import { defineRoute } from '../route.js';

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `script-src ${sha256(DASHBOARD_SCRIPT)}`,
  `style-src ${sha256(DASHBOARD_STYLE)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const dashboardRoutes = [
  defineRoute({
    method: 'GET',
    url: '/dashboard',
    access: 'page',
    handler: async (_request, reply) =>
      reply
        .type('text/html; charset=utf-8')
        .header('content-security-policy', CONTENT_SECURITY_POLICY)
        // The page may carry the API key in its address: keep it out of caches and Referer headers.
        .header('cache-control', 'no-store')
        .header('referrer-policy', 'no-referrer')
        .send(DASHBOARD_HTML),
  }),
];
