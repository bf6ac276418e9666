import { formatError } from '../../core/log.js';
import { TextClassifier } from '../../runtime/text-classifier.js';
import { createServer, DEFAULT_HOST, DEFAULT_PORT } from '../../server/server.js';
import { artifactFromArgument } from '../open-artifact.js';
import { classifierOptions, runtimeFlags } from '../runtime-flags.js';
import { defineCommand, host, integer, nonEmpty } from '../table.js';

export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'Serve a model over HTTP: GET /ping, POST /predict.',
  description:
    'Starts listening at once (GET /ping answers 503 while the model loads, 200 when ready), compiles a SOURCE ' +
    'through the cache if needed, loads the artifact and answers POST /predict with {"text": "…"} or ' +
    '{"texts": ["…", …]}. Binds 127.0.0.1 unless told otherwise. Stops cleanly on Ctrl-C or SIGTERM.',
  positionals: [{ name: 'ARTIFACT', description: 'A compiled artifact folder, or a SOURCE to compile first (see kiln compile).', required: true }],
  flags: {
    host: { type: 'string', arg: 'HOST', description: 'Address to listen on; 0.0.0.0 exposes the server to the network.', default: DEFAULT_HOST, parse: host },
    port: { type: 'string', short: 'p', arg: 'PORT', env: 'PORT', description: 'TCP port to listen on; 0 picks a free one.', default: DEFAULT_PORT, parse: integer(0, 65535) },
    'api-key': {
      type: 'string',
      arg: 'KEY',
      env: 'KILN_API_KEY',
      description: 'Require this key (authorization: Bearer KEY, or x-api-key: KEY) on every route but GET /ping.',
      default: null as string | null,
      defaultText: 'none',
      parse: nonEmpty,
    },
    ...runtimeFlags,
  },
  examples: [
    { command: 'kiln serve models/sst2-distilbert-tiny', note: 'compile (first run) and serve the embedded model on http://127.0.0.1:8080' },
    { command: 'PORT=9000 kiln serve sentiment.kiln --host 0.0.0.0 --api-key "$KEY"', note: 'an artifact on all interfaces, port 9000, with an API key' },
  ],
  async run({ positionals, flags }) {
    const server = createServer({ host: flags.host, port: flags.port, apiKey: flags['api-key'] });
    const url = await server.listen();
    process.stderr.write(`kiln serve: listening on ${url} (loading the model; GET /ping answers 503 until it is ready)\n`);

    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`kiln serve: ${signal}, stopping\n`);
      void server.close().then(() => process.stderr.write('kiln serve: stopped\n'));
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));

    const started = performance.now();
    try {
      const artifact = await artifactFromArgument(positionals.ARTIFACT![0]!, { quiet: false });
      const classifier = await TextClassifier.load(artifact, classifierOptions(flags));
      if (stopping) {
        await classifier.close();
        return;
      }
      server.model.set(classifier);
      const m = classifier.manifest;
      const l = classifier.layout;
      process.stderr.write(
        `kiln serve: model ${m.name} ready in ${((performance.now() - started) / 1000).toFixed(1)} s (labels ${m.labels.join(', ')}; ` +
          `${l.replicas} replica(s) × ${l.threadsPerReplica} thread(s), max batch ${l.maxBatch}, buckets ${l.buckets.join(',')}); ` +
          `try: curl -s ${url}/predict -H 'content-type: application/json' -d '{"text":"I loved it"}'\n`,
      );
    } catch (err) {
      // A model that cannot load is fatal: report it and stop serving rather than answer 503 forever.
      process.stderr.write(`${formatError(err)}\n`);
      process.exitCode = 1;
      stopping = true;
      await server.close();
    }
  },
});
