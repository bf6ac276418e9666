/**
 * HTTP to the Hub: one fetch that adds the token only on requests to the Hub's own origin and
 * follows redirects itself, so a redirect to a CDN or any other host never carries the token
 * (Node's fetch would forward it on some redirects). Every request has a deadline; every
 * failed answer becomes a coded error naming the fix, read from the Hub's `X-Error-Code`.
 */
import { KilnError } from '../core/errors.js';
import { KILN_VERSION } from '../version.js';
import type { HubSettings } from './settings.js';

const MAX_REDIRECTS = 8;

/** Network failures, timeouts, 429 and 5xx: the Hub is not answering; cached data may stand in. */
export class HubUnreachableError extends Error {
  override readonly name = 'HubUnreachableError';
}

/** What an error message needs to name: the repository, and the file when there is one. */
export interface RequestContext {
  repo: string;
  revision: string;
  /** The file requested, for a missing-file error. */
  file?: string;
  /** Appended to a not-found message (e.g. that a bare id was not a local path either). */
  notFoundHint?: string;
}

export class HubClient {
  readonly origin: string;

  constructor(readonly settings: HubSettings) {
    this.origin = new URL(settings.endpoint).origin;
  }

  /** `${endpoint}/${path}`; `path` segments must already be encoded. */
  url(path: string): string {
    return `${this.settings.endpoint}/${path}`;
  }

  /** Whether this request would carry the token (only to the Hub's origin). */
  carriesToken(url: string): boolean {
    return this.settings.token !== null && new URL(url).origin === this.origin;
  }

  /**
   * `fetch` with kiln's rules: the Authorization header is set here for the Hub's origin and
   * removed for any other; redirects are followed here, one hop at a time, re-deciding each time.
   * Given to `@huggingface/hub` as its `fetch` option too.
   */
  readonly fetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    let url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    for (let hop = 0; hop <= MAX_REDIRECTS; hop += 1) {
      const headers = new Headers(init.headers);
      headers.delete('authorization');
      if (this.carriesToken(url.href)) headers.set('authorization', `Bearer ${this.settings.token}`);
      if (!headers.has('user-agent')) headers.set('user-agent', `kiln/${KILN_VERSION}`);
      const response = await fetch(url, { ...init, headers, redirect: 'manual' });
      const location = response.headers.get('location');
      if (response.status < 300 || response.status > 399 || !location) return response;
      await response.body?.cancel();
      url = new URL(location, url);
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw new KilnError('KILN_ERR_HUB_BAD_RESPONSE', {
          url: response.url,
          problem: `it redirects to a ${url.protocol} URL`,
        });
    }
    throw new KilnError('KILN_ERR_HUB_BAD_RESPONSE', {
      url: url.href,
      problem: `more than ${MAX_REDIRECTS} redirects`,
    });
  };

  /** GET a JSON document with a deadline for the headers and for each chunk of the body. */
  async json(path: string, context: RequestContext): Promise<unknown> {
    const url = this.url(path);
    const controller = new AbortController();
    let timer = setTimeout(() => controller.abort(), this.settings.metadataTimeoutMs);
    try {
      const response = await this.fetch(url, { headers: { accept: 'application/json' }, signal: controller.signal });
      if (!response.ok) throw await this.failure(response, context);
      const chunks: Uint8Array[] = [];
      for await (const chunk of response.body ?? []) {
        clearTimeout(timer);
        timer = setTimeout(() => controller.abort(), this.settings.stallTimeoutMs);
        chunks.push(chunk as Uint8Array);
      }
      try {
        return JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        throw new KilnError('KILN_ERR_HUB_BAD_RESPONSE', { url, problem: 'it is not valid JSON' }, { cause: err });
      }
    } catch (err) {
      throw this.wrap(err, url);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A thrown network error or abort as HubUnreachableError; coded errors pass through. */
  wrap(err: unknown, url: string): Error {
    if (err instanceof KilnError || err instanceof HubUnreachableError) return err;
    const origin = new URL(url).origin;
    const where = origin === this.origin ? '' : ` (at ${origin})`;
    return new HubUnreachableError(`${describeNetworkError(err)}${where}`, { cause: err });
  }

  /** The coded error for a non-2xx answer; HubUnreachableError for 429 and 5xx. */
  async failure(response: Response, context: RequestContext): Promise<Error> {
    const code = response.headers.get('x-error-code');
    const serverMessage = response.headers.get('x-error-message') ?? (await bodyMessage(response));
    const { status } = response;
    const endpoint = this.settings.endpoint;
    const { repo, revision } = context;
    if (status === 429 || status >= 500)
      return new HubUnreachableError(`HTTP ${status}${serverMessage ? `: ${serverMessage}` : ''}`);
    if (code === 'RevisionNotFound')
      return new KilnError('KILN_ERR_HUB_REVISION_NOT_FOUND', { repo, revision, endpoint });
    if (code === 'EntryNotFound' && context.file)
      return new KilnError('KILN_ERR_HUB_FILE_MISSING', {
        repo,
        commit: revision,
        file: context.file,
        purpose: 'the listing names it, but the Hub does not serve it',
      });
    if (code === 'GatedRepo')
      return new KilnError('KILN_ERR_HUB_UNAUTHORIZED', {
        repo,
        endpoint,
        status,
        reason: `the model is gated${this.settings.token ? ' and this token has not been granted access' : ' and no token was sent'}`,
      });
    if (status === 401 && this.settings.token)
      return new KilnError('KILN_ERR_HUB_UNAUTHORIZED', {
        repo,
        endpoint,
        status,
        reason: 'the token was refused: it is invalid or expired, or its account cannot read this model',
      });
    if (status === 403)
      return new KilnError('KILN_ERR_HUB_UNAUTHORIZED', {
        repo,
        endpoint,
        status,
        reason: serverMessage || 'forbidden',
      });
    // The Hub answers 401 RepoNotFound to anonymous requests for private, gated and absent models alike.
    if (code === 'RepoNotFound' || status === 404 || status === 401)
      return new KilnError('KILN_ERR_HUB_REPO_NOT_FOUND', {
        repo,
        endpoint,
        hint: `${status === 401 ? ' (or it is private or gated: no token was sent)' : ''}${context.notFoundHint ?? ''}`,
      });
    return new KilnError('KILN_ERR_HUB_BAD_RESPONSE', {
      url: response.url || endpoint,
      problem: `HTTP ${status}${serverMessage ? `: ${serverMessage}` : ''}`,
    });
  }
}

async function bodyMessage(response: Response): Promise<string> {
  try {
    const text = (await response.text()).slice(0, 500);
    try {
      const body = JSON.parse(text) as { error?: unknown };
      return typeof body.error === 'string' ? body.error : '';
    } catch {
      return /<html/i.test(text) ? '' : text.trim();
    }
  } catch {
    return '';
  }
}

/** `connection refused`, `timed out`, …: the innermost cause of a fetch failure, in words. */
export function describeNetworkError(err: unknown): string {
  let inner: unknown = err;
  while (inner instanceof Error && inner.cause instanceof Error) inner = inner.cause;
  if (err instanceof Error && err.name === 'AbortError') return 'no answer before the deadline';
  const code = (inner as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host name not found';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') return 'connection timed out';
  return inner instanceof Error ? inner.message : String(inner);
}
