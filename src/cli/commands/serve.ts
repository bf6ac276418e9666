import { KilnError } from '../../core/errors.js';
import { formatError } from '../../core/log.js';
import { DEFAULT_HOST, DEFAULT_PORT } from '../../server/defaults.js';
import {
  DEFAULT_MAX_CLIENT_BATCH,
  DEFAULT_MAX_LABELS,
  DEFAULT_MAX_TEXT_CHARS,
  MAX_TEXTS_PER_REQUEST,
} from '../../tasks/limits.js';
import { type LoadedModel, taskOf } from '../../tasks/registry.js';
import { compileNotice } from '../compile-notice.js';
import { defaultModel } from '../default-model.js';
import { batchTokensNote, wideNote } from '../format.js';
import { hubFlags, hubOptions } from '../hub-flags.js';
import { runtimeFlags, runtimeOptions } from '../runtime-flags.js';
import { defineCommand, host, integer, nonEmpty, nullFlag, usage, valueFlag } from '../table.js';

/** Where SageMaker mounts the model (model.tar.gz, extracted) in a serving container. */
export const SAGEMAKER_MODEL_DIR = '/opt/ml/model';

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
    host: valueFlag({
      arg: 'HOST',
      env: 'KILN_HOST',
      description: 'Address to listen on; 0.0.0.0 exposes the server to the network.',
      default: DEFAULT_HOST,
      parse: host,
    }),
    port: nullFlag({
      short: 'p',
      arg: 'PORT',
      env: 'PORT',
      description: `TCP port to listen on; 0 picks a free one. Without --port or PORT, ${SAGEMAKER_PORT_ENV} is used when set.`,
      defaultText: `${DEFAULT_PORT}, or ${SAGEMAKER_PORT_ENV} when set`,
      parse: integer(0, 65535),
    }),
    'api-key': nullFlag({
      arg: 'KEY',
      env: 'KILN_API_KEY',
      description:
        'Require this key (authorization: Bearer KEY, or x-api-key: KEY) on every route but the health checks (GET /ping, /v2/health/live, /v2/health/ready).',
      parse: nonEmpty,
    }),
    'timeout-ms': nullFlag({
      arg: 'MS',
      description: 'Answer 504 (KILN_ERR_HTTP_TIMEOUT) to a request not answered this long after it arrived.',
      parse: integer(1, 3_600_000),
    }),
    'max-text-chars': valueFlag({
      arg: 'N',
      description: 'Most characters per text; longer texts answer 413 (KILN_ERR_HTTP_TEXT_TOO_LONG).',
      default: DEFAULT_MAX_TEXT_CHARS,
      parse: integer(1, 10_000_000),
    }),
    'max-client-batch': valueFlag({
      arg: 'N',
      description:
        "Most inputs one request may carry: texts and pairs on /predict, /embed, /v1/embeddings, /tokenize, /invocations and KServe, images on /predict, a rerank's texts (/rerank, /v1/rerank); more answer 413 (KILN_ERR_HTTP_TOO_MANY_TEXTS; for a rerank KILN_ERR_HTTP_CLIENT_BATCH). /info reports it as max_client_batch_size.",
      default: DEFAULT_MAX_CLIENT_BATCH,
      parse: integer(1, MAX_TEXTS_PER_REQUEST),
    }),
    'max-labels': valueFlag({
      arg: 'N',
      description:
        'Most candidate labels one zero-shot request may carry (each label is one model run); more answer 413 (KILN_ERR_INPUT_TOO_MANY_LABELS).',
      default: DEFAULT_MAX_LABELS,
      parse: integer(1, MAX_TEXTS_PER_REQUEST),
    }),
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
    // Loaded here, not at the top: every other command (and --help) starts without fastify.
    const { createServer } = await import('../../api/serve.js');
    const server = createServer({
      models: artifactArg,
      onCompile: compileNotice,
      hub: hubOptions(flags),
      host: flags.host,
      port,
      apiKey: flags['api-key'],
      timeoutMs: flags['timeout-ms'],
      maxTextChars: flags['max-text-chars'],
      maxClientBatch: flags['max-client-batch'],
      maxLabels: flags['max-labels'],
      ...runtimeOptions(flags),
    });
    const started = performance.now();
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
        .drain({
          reason: signal,
          onDraining: (inFlight) =>
            process.stderr.write(
              `kiln serve: ${signal}, stopping: answering ${inFlight} request(s) in flight, refusing new ones (GET /ping answers 503)\n`,
            ),
        })
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

    try {
      const loaded = await server.ready;
      if (loaded.length === 0) return;
      for (const model of loaded) {
        const m = model.manifest;
        const l = model.layout;
        process.stderr.write(
          `kiln serve: model ${m.name} ready in ${((performance.now() - started) / 1000).toFixed(1)} s (${taskOf(model).serve.describe(m)}; ` +
            `on ${l.device}, ${l.replicas} replica(s) × ${l.threadsPerReplica} thread(s)${wideNote(l.wideThreads)}, max batch ${l.maxBatch}${batchTokensNote(l.maxBatchTokens)}, buckets ${l.buckets.join(',')})\n`,
        );
      }
      process.stderr.write(`kiln serve: try: ${tryCommand(url, loaded[0]!, loaded.length > 1)}\n`);
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

/** A curl command that exercises the model's main route. */
function tryCommand(url: string, model: LoadedModel, named: boolean): string {
  return taskOf(model).serve.example(url, model.manifest.name, named);
}
