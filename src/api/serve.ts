/**
 * `createServer`: the HTTP server with its models. It listens before the models are loaded, so
 * health checks see 503 (loading) rather than nothing, then loads each model and serves it.
 */
import { readdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pathKind } from '../core/fs.js';
import type { PullOptions } from '../hub/pull.js';
import { isArtifactDir } from '../model/artifact.js';
import { DEFAULT_THREADS_PER_REPLICA } from '../runtime/task-model.js';
import { createServer as createHttpServer, type ServerOptions } from '../server/server.js';
import type { LoadedModel } from '../tasks/registry.js';
import { loadModel, type OnCompile, type RuntimeOptions } from './open.js';

export interface CreateServerOptions extends ServerOptions, RuntimeOptions {
  /**
   * What to serve: an artifact folder, a model source or a kiln package; a folder holding
   * several of them (a model repository: each served under its name); or a list of paths.
   */
  models: string | readonly string[];
  /** Told when a model was named by its source and had to be compiled (see {@link LoadModelOptions.onCompile}). */
  onCompile?: OnCompile;
  /** How a Hub model is pulled (see {@link LoadModelOptions.hub}). */
  hub?: PullOptions;
}

export interface DrainOptions {
  /** Why the server stops, quoted in the 503 answers new requests get. @defaultValue 'drain' */
  reason?: string;
  /** Told at once how many requests are still being answered. */
  onDraining?: (inFlight: number) => void;
}

export interface Server {
  /**
   * Starts listening, then loads the models; resolves to the URL (with the real port when 0 was
   * asked) as soon as it listens. Until the models are ready, GET /ping answers 503.
   */
  listen(): Promise<string>;
  /**
   * Resolves to the served models once every one is loaded and answering (an empty list when
   * the server was stopped first); rejects when one cannot be loaded, after closing the others:
   * the server then keeps answering 503 until it is closed.
   */
  readonly ready: Promise<readonly LoadedModel[]>;
  /**
   * Graceful stop: health checks turn 503 at once, new requests get 503 KILN_ERR_HTTP_DRAINING,
   * requests already received are answered; then the models and the listener close.
   */
  drain(options?: DrainOptions): Promise<void>;
  /** Stops at once: closes the listener (requests in flight finish), then the models. */
  close(): Promise<void>;
}

/**
 * The models of a model repository: a folder that is neither an artifact nor a model source
 * but holds some (each a subfolder with manifest.json or config.json). Null for anything else.
 */
async function repositoryMembers(path: string): Promise<string[] | null> {
  if (
    (await pathKind(path)) !== 'dir' ||
    (await isArtifactDir(path)) ||
    (await pathKind(join(path, 'config.json'))) === 'file'
  )
    return null;
  const members: string[] = [];
  for (const entry of (await readdir(path, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!entry.isDirectory()) continue;
    const dir = join(path, entry.name);
    if ((await isArtifactDir(dir)) || (await pathKind(join(dir, 'config.json'))) === 'file') members.push(dir);
  }
  return members.length > 0 ? members : null;
}

export function createServer(options: CreateServerOptions): Server {
  const {
    models,
    onCompile,
    hub,
    host,
    port,
    apiKey,
    bodyLimit,
    maxTextChars,
    maxClientBatch,
    maxLabels,
    timeoutMs,
    ...runtime
  } = options;
  const http = createHttpServer({ host, port, apiKey, bodyLimit, maxTextChars, maxClientBatch, maxLabels, timeoutMs });
  let stopping = false;
  let loading: Promise<unknown> = Promise.resolve();
  let settle: { resolve: (models: readonly LoadedModel[]) => void; reject: (err: unknown) => void };
  const ready = new Promise<readonly LoadedModel[]>((resolve, reject) => {
    settle = { resolve, reject };
  });
  // A caller that only listens and never awaits `ready` must not see an unhandled rejection.
  ready.catch(() => {});

  const load = async (): Promise<LoadedModel[]> => {
    const members = typeof models === 'string' ? await repositoryMembers(models) : null;
    const paths = members ?? (typeof models === 'string' ? [models] : [...models]);
    const shared = { ...runtime };
    // Several models share the cores: unless told otherwise, each gets its share of replicas.
    if ((members || paths.length > 1) && shared.replicas === undefined) {
      const threads = shared.threadsPerReplica ?? DEFAULT_THREADS_PER_REPLICA;
      shared.replicas = Math.max(1, Math.floor(availableParallelism() / threads / paths.length));
    }
    const loaded: LoadedModel[] = [];
    try {
      for (const path of paths) {
        if (stopping) break;
        loaded.push(await loadModel({ ...shared, model: path, onCompile, hub }));
      }
    } catch (err) {
      await Promise.all(loaded.map((m) => m.close()));
      throw err;
    }
    if (stopping) {
      await Promise.all(loaded.map((m) => m.close()));
      return [];
    }
    for (const model of loaded) http.model.set(model);
    return loaded;
  };

  return {
    ready,
    async listen() {
      let url: string;
      try {
        url = await http.listen();
      } catch (err) {
        settle.reject(err);
        throw err;
      }
      loading = load().then(settle.resolve, settle.reject);
      return url;
    },
    async drain(drainOptions = {}) {
      stopping = true;
      await http.drain(drainOptions.reason ?? 'drain', drainOptions.onDraining);
      await loading;
    },
    async close() {
      stopping = true;
      await http.close();
      await loading;
    },
  };
}
