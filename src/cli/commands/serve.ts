import { readdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { KilnError } from '../../core/errors.js';
import { pathKind } from '../../core/fs.js';
import { formatError } from '../../core/log.js';
import type { Manifest } from '../../model/artifact.js';
import { isArtifactDir } from '../../model/artifact.js';
import { type LoadedModel, loadModel } from '../../runtime/load-model.js';
import { DEFAULT_MAX_TEXT_CHARS } from '../../server/limits.js';
import { createServer, DEFAULT_HOST, DEFAULT_PORT } from '../../server/server.js';
import { defaultModel } from '../default-model.js';
import { hubFlags, hubOptions } from '../hub-flags.js';
import { artifactFromArgument } from '../open-artifact.js';
import { classifierOptions, runtimeFlags } from '../runtime-flags.js';
import { defineCommand, host, integer, nonEmpty, usage } from '../table.js';

/** Where SageMaker mounts the model (model.tar.gz, extracted) in a serving container. */
export const SAGEMAKER_MODEL_DIR = '/opt/ml/model';

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
/** SageMaker sets this when the container must listen on another port than 8080. */
const SAGEMAKER_PORT_ENV = 'SAGEMAKER_BIND_TO_PORT';

export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'Serve a model over HTTP: /predict, KServe v2, SageMaker /invocations, /metrics.',
  description:
    'Starts listening at once (GET /ping answers 503 while the model loads, 200 when ready), compiles a SOURCE ' +
    'through the cache if needed, loads the artifact and answers POST /predict with {"text": "…"} or ' +
    '{"texts": ["…", …]}, the KServe v2 protocol under /v2, SageMaker\'s POST /invocations (JSON or JSON Lines), ' +
    'and Prometheus metrics on GET /metrics. A folder of artifacts or sources (a model repository) serves each under its ' +
    'name; requests then name theirs ("model" in the body, the KServe path, or x-amzn-sagemaker-target-model). Without ARTIFACT it serves /opt/ml/model when that exists, as a ' +
    'SageMaker container started with "serve" does. Binds 127.0.0.1 unless told otherwise (--host, or KILN_HOST as the container image sets). On SIGTERM or Ctrl-C ' +
    'it drains: health checks answer 503 at once, new requests 503, accepted ones are answered, then it exits 0 ' +
    '(a second signal stops it at once).',
  positionals: [
    {
      name: 'ARTIFACT',
      description: `A compiled artifact folder, or a SOURCE to compile first (see kiln compile); default ${SAGEMAKER_MODEL_DIR} when it has files, else the Hub model HF_MODEL_ID (at HF_MODEL_REVISION), as Hugging Face's SageMaker containers do.`,
      required: false,
    },
  ],
  flags: {
    host: {
      type: 'string',
      arg: 'HOST',
      env: 'KILN_HOST',
      description: 'Address to listen on; 0.0.0.0 exposes the server to the network.',
      default: DEFAULT_HOST,
      parse: host,
    },
    port: {
      type: 'string',
      short: 'p',
      arg: 'PORT',
      env: 'PORT',
      description: `TCP port to listen on; 0 picks a free one. Without --port or PORT, ${SAGEMAKER_PORT_ENV} is used when set.`,
      default: null as number | null,
      defaultText: `${DEFAULT_PORT}, or ${SAGEMAKER_PORT_ENV} when set`,
      parse: integer(0, 65535),
    },
    'api-key': {
      type: 'string',
      arg: 'KEY',
      env: 'KILN_API_KEY',
      description:
        'Require this key (authorization: Bearer KEY, or x-api-key: KEY) on every route but the health checks (GET /ping, /v2/health/live, /v2/health/ready).',
      default: null as string | null,
      defaultText: 'none',
      parse: nonEmpty,
    },
    'timeout-ms': {
      type: 'string',
      arg: 'MS',
      description: 'Answer 504 (KILN_ERR_HTTP_TIMEOUT) to a request not answered this long after it arrived.',
      default: null as number | null,
      defaultText: 'none',
      parse: integer(1, 3_600_000),
    },
    'max-text-chars': {
      type: 'string',
      arg: 'N',
      description: 'Most characters per text; longer texts answer 413 (KILN_ERR_HTTP_TEXT_TOO_LONG).',
      default: DEFAULT_MAX_TEXT_CHARS,
      parse: integer(1, 10_000_000),
    },
    ...runtimeFlags,
    ...hubFlags,
  },
  examples: [
    {
      command: 'kiln serve models/sst2-distilbert-tiny',
      note: 'compile (first run) and serve the embedded model on http://127.0.0.1:8080',
    },
    {
      command: 'PORT=9000 kiln serve sentiment.kiln --host 0.0.0.0 --api-key "$KEY"',
      note: 'an artifact on all interfaces, port 9000, with an API key',
    },
    {
      command: 'kiln serve --host 0.0.0.0',
      note: 'in a SageMaker container: the model at /opt/ml/model, port 8080 or SAGEMAKER_BIND_TO_PORT',
    },
  ],
  async run({ positionals, flags }) {
    const artifactArg = positionals.ARTIFACT![0] ?? defaultModel(SAGEMAKER_MODEL_DIR);
    if (artifactArg === null) {
      throw new KilnError('KILN_ERR_CLI_MISSING_ARGUMENT', {
        command: 'serve',
        argument: `ARTIFACT (there is no ${SAGEMAKER_MODEL_DIR} to serve instead, and HF_MODEL_ID names no Hub model)`,
        usage: usage(serveCommand),
      });
    }
    const sagemakerPort = process.env[SAGEMAKER_PORT_ENV];
    const port =
      flags.port ??
      (sagemakerPort ? integer(0, 65535)(sagemakerPort, `${SAGEMAKER_PORT_ENV} (environment)`) : DEFAULT_PORT);
    const server = createServer({
      host: flags.host,
      port,
      apiKey: flags['api-key'],
      timeoutMs: flags['timeout-ms'],
      maxTextChars: flags['max-text-chars'],
    });
    const url = await server.listen();
    process.stderr.write(
      `kiln serve: listening on ${url} (loading the model; GET /ping answers 503 until it is ready)\n`,
    );

    let stopping = false;
    const stop = (signal: string): void => {
      // A second signal takes the default action (the process ends at once).
      process.removeListener('SIGINT', onSigint);
      process.removeListener('SIGTERM', onSigterm);
      if (stopping) return;
      stopping = true;
      void server
        .drain(signal, (inFlight) =>
          process.stderr.write(
            `kiln serve: ${signal}, stopping: answering ${inFlight} request(s) in flight, refusing new ones (GET /ping answers 503)\n`,
          ),
        )
        .then(
          () => process.stderr.write('kiln serve: stopped\n'),
          (err: unknown) => {
            process.stderr.write(`${formatError(err)}\n`);
            process.exitCode = 1;
          },
        );
    };
    const onSigint = (): void => stop('SIGINT');
    const onSigterm = (): void => stop('SIGTERM');
    process.once('SIGINT', onSigint);
    process.once('SIGTERM', onSigterm);

    const started = performance.now();
    try {
      // A folder of models (a model repository, like Triton's) serves each under its name.
      const members = await repositoryMembers(artifactArg);
      const paths = members ?? [artifactArg];
      const options = classifierOptions(flags);
      // Several models share the cores: unless told otherwise, each gets its share of replicas.
      if (members && options.replicas === undefined)
        options.replicas = Math.max(
          1,
          Math.floor(availableParallelism() / (options.threadsPerReplica ?? 1) / members.length),
        );
      const loaded: LoadedModel[] = [];
      try {
        for (const path of paths)
          loaded.push(
            await loadModel(await artifactFromArgument(path, { quiet: false, hub: hubOptions(flags) }), options),
          );
      } catch (err) {
        await Promise.all(loaded.map((c) => c.close()));
        throw err;
      }
      if (stopping) {
        await Promise.all(loaded.map((c) => c.close()));
        return;
      }
      for (const classifier of loaded) server.model.set(classifier);
      for (const classifier of loaded) {
        const m = classifier.manifest;
        const l = classifier.layout;
        process.stderr.write(
          `kiln serve: model ${m.name} ready in ${((performance.now() - started) / 1000).toFixed(1)} s (${describeTask(m)}; ` +
            `${l.replicas} replica(s) × ${l.threadsPerReplica} thread(s), max batch ${l.maxBatch}, buckets ${l.buckets.join(',')})\n`,
        );
      }
      process.stderr.write(`kiln serve: try: ${tryCommand(url, loaded[0]!, Boolean(members))}\n`);
    } catch (err) {
      // A model that cannot load is fatal: report it and stop serving rather than answer 503 forever.
      process.stderr.write(`${formatError(err)}\n`);
      process.exitCode = 1;
      stopping = true;
      process.removeListener('SIGINT', onSigint);
      process.removeListener('SIGTERM', onSigterm);
      await server.close();
    }
  },
});

/** What a model answers, for the ready line: its labels, or its vectors. */
function describeTask(m: Manifest): string {
  if (m.task === 'image-classification' && m.image)
    return `${m.image.height} × ${m.image.width} images, ${m.labels.length} labels`;
  if (m.task === 'feature-extraction' && m.embedding)
    return `${m.task}, ${m.embedding.dimension}-dimensional ${m.embedding.pooling}-pooled vectors`;
  return `labels ${m.labels.length > 8 ? `${m.labels.slice(0, 8).join(', ')} … (${m.labels.length})` : m.labels.join(', ')}`;
}

/** A curl command that exercises the model's main route. */
function tryCommand(url: string, model: LoadedModel, named: boolean): string {
  const name = model.manifest.name;
  if (model.task === 'feature-extraction')
    return `curl -s ${url}/v1/embeddings -H 'content-type: application/json' -d '{"model":"${name}","input":"I loved it"}'`;
  if (model.task === 'image-classification')
    return `curl -s ${url}/predict -H 'content-type: image/jpeg' --data-binary @photo.jpg${named ? ` (several models: send {"model":"${name}","image":"<base64>"} as JSON)` : ''}`;
  const body = named ? `{"model":"${name}","text":"I loved it"}` : '{"text":"I loved it"}';
  return `curl -s ${url}/predict -H 'content-type: application/json' -d '${body}'`;
}
