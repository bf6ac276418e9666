import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { COMMANDS } from '../../src/cli/commands.js';
import { type Invocation, parseInvocation } from '../../src/cli/parse.js';

const NO_ENV: NodeJS.ProcessEnv = {};

/** A short, comparable summary of an invocation. */
function summary(inv: Invocation): unknown {
  switch (inv.kind) {
    case 'help':
      return { kind: 'help', command: inv.command.name };
    case 'run':
      return { kind: 'run', command: inv.command.name, positionals: inv.positionals, flags: inv.flags };
    default:
      return inv;
  }
}

describe('parseInvocation', () => {
  const outcomes: [string[], unknown][] = [
    [[], { kind: 'overview' }],
    [['--help'], { kind: 'overview' }],
    [['-h'], { kind: 'overview' }],
    [['help'], { kind: 'overview' }],
    [['help', 'compile'], { kind: 'help', command: 'compile' }],
    [['help', 'cache', 'ls'], { kind: 'help', command: 'cache ls' }],
    [['help', 'cache'], { kind: 'group-help', group: 'cache' }],
    [['--version'], { kind: 'version' }],
    [['-v'], { kind: 'version' }],
    [['compile', '--help'], { kind: 'help', command: 'compile' }],
    [['compile', 'x', '-h'], { kind: 'help', command: 'compile' }],
    [['cache', 'ls', '--help'], { kind: 'help', command: 'cache ls' }],
    [['cache'], { kind: 'group-help', group: 'cache' }],
    [['cache', '--help'], { kind: 'group-help', group: 'cache' }],
    [['cache', 'ls', '--json'], { kind: 'run', command: 'cache ls', positionals: {}, flags: { json: true } }],
    [['cache', 'ls'], { kind: 'run', command: 'cache ls', positionals: {}, flags: { json: false } }],
    [['cache', 'clear'], { kind: 'run', command: 'cache clear', positionals: { MODEL: [] }, flags: {} }],
  ];
  for (const [argv, expected] of outcomes) {
    test(`parseInvocation([${argv.map((a) => JSON.stringify(a)).join(', ')}])`, () => {
      assert.deepEqual(summary(parseInvocation(argv, COMMANDS, NO_ENV)), expected);
    });
  }

  const errors: [string[], string, RegExp][] = [
    [
      ['compile', 'x', '--max-batch', '0'],
      'KILN_ERR_CLI_INVALID_FLAG',
      /^--max-batch must be an integer in \[1, 1024\], got "0"$/,
    ],
    [
      ['compile', 'x', '--max-batch', 'abc'],
      'KILN_ERR_CLI_INVALID_FLAG',
      /^--max-batch must be an integer in \[1, 1024\], got "abc"$/,
    ],
    [['compile', 'x', '--max-batch', '1025'], 'KILN_ERR_CLI_INVALID_FLAG', /got "1025"/],
    [['compile', 'x', '--max-batch', '2.5'], 'KILN_ERR_CLI_INVALID_FLAG', /got "2\.5"/],
    [['compile', 'x', '--max-batch=-3'], 'KILN_ERR_CLI_INVALID_FLAG', /got "-3"/],
    [
      ['compile', 'x', '--max-length', '1'],
      'KILN_ERR_CLI_INVALID_FLAG',
      /^--max-length must be an integer in \[2, 8192\], got "1"$/,
    ],
    [['compile', 'x', '--max-batch'], 'KILN_ERR_CLI_INVALID_FLAG', /^--max-batch must be given a value/],
    [['compile', 'x', '-o', ' '], 'KILN_ERR_CLI_INVALID_FLAG', /^--out must be a non-empty string/],
    [
      ['serve', 'x', '--port', '70000'],
      'KILN_ERR_CLI_INVALID_FLAG',
      /^--port must be an integer in \[0, 65535\], got "70000"$/,
    ],
    [['serve', 'x', '--host', 'a b'], 'KILN_ERR_CLI_INVALID_FLAG', /^--host must be a host name/],
    [
      ['compile'],
      'KILN_ERR_CLI_MISSING_ARGUMENT',
      /^"kiln compile" needs SOURCE; usage: kiln compile SOURCE \[options\]$/,
    ],
    [['run'], 'KILN_ERR_CLI_MISSING_ARGUMENT', /needs ARTIFACT/],
    [
      ['compile', 'a', 'b'],
      'KILN_ERR_CLI_EXTRA_ARGUMENT',
      /^"kiln compile" does not take "b"; usage: kiln compile SOURCE/,
    ],
    [['cache', 'ls', 'extra'], 'KILN_ERR_CLI_EXTRA_ARGUMENT', /does not take "extra"/],
    [['compile', 'a', '--bogus'], 'KILN_ERR_CLI_UNKNOWN_FLAG', /^unknown flag "--bogus" for "kiln compile"/],
    [['serve', 'a', '-z'], 'KILN_ERR_CLI_UNKNOWN_FLAG', /^unknown flag "-z" for "kiln serve"/],
    [
      ['frobnicate'],
      'KILN_ERR_CLI_UNKNOWN_COMMAND',
      /^unknown command "frobnicate"; commands are: compile, pull, inspect, run, serve, bench, tune, batch, package, top, monitor, import, synth, cache, deploy\. /,
    ],
    [
      ['cache', 'nope'],
      'KILN_ERR_CLI_UNKNOWN_COMMAND',
      /^unknown command "cache nope"; commands are: cache ls, cache clear, cache path\. /,
    ],
  ];
  for (const [argv, code, message] of errors) {
    test(`parseInvocation([${argv.map((a) => JSON.stringify(a)).join(', ')}]) throws ${code}`, () => {
      assert.throws(() => parseInvocation(argv, COMMANDS, NO_ENV), { name: 'KilnError', code, status: 400, message });
    });
  }

  test('parseInvocation(["help", "frobnicate"]) falls back to the overview', () => {
    assert.deepEqual(parseInvocation(['help', 'frobnicate'], COMMANDS, NO_ENV), { kind: 'overview' });
  });

  // null: no port given, so serve falls back to SAGEMAKER_BIND_TO_PORT, then 8080.
  const ports: [string[], NodeJS.ProcessEnv, number | null][] = [
    [[], {}, null],
    [[], { PORT: '9001' }, 9001],
    [[], { PORT: '' }, null],
    [['--port', '7000'], { PORT: '9001' }, 7000],
    [['-p', '0'], { PORT: '9001' }, 0],
  ];
  for (const [flags, env, port] of ports) {
    test(`parseInvocation(serve ${flags.join(' ')}) with PORT=${JSON.stringify(env.PORT)} listens on ${port}`, () => {
      const inv = parseInvocation(['serve', 'm.kiln', ...flags], COMMANDS, env);
      assert.equal(inv.kind, 'run');
      assert.equal((inv as Extract<Invocation, { kind: 'run' }>).flags.port, port);
    });
  }

  test('parseInvocation(serve) with PORT=abc throws KILN_ERR_CLI_INVALID_FLAG naming PORT', () => {
    assert.throws(() => parseInvocation(['serve', 'm.kiln'], COMMANDS, { PORT: 'abc' }), {
      code: 'KILN_ERR_CLI_INVALID_FLAG',
      message: /^PORT \(environment\) must be an integer in \[0, 65535\], got "abc"$/,
    });
  });

  test('parseInvocation(serve --port 7000) ignores a bad PORT in the environment', () => {
    const inv = parseInvocation(['serve', 'm.kiln', '--port', '7000'], COMMANDS, { PORT: 'abc' });
    assert.equal((inv as Extract<Invocation, { kind: 'run' }>).flags.port, 7000);
  });

  test('parseInvocation(serve) reads the API key from KILN_API_KEY', () => {
    const inv = parseInvocation(['serve', 'm.kiln'], COMMANDS, { KILN_API_KEY: 's3cret' });
    assert.equal((inv as Extract<Invocation, { kind: 'run' }>).flags['api-key'], 's3cret');
  });

  test('parseInvocation(run ARTIFACT TEXT…) collects every TEXT in order', () => {
    const inv = parseInvocation(['run', 'm.kiln', 'I loved it', '--json', 'meh', 'awful'], COMMANDS, NO_ENV);
    assert.deepEqual(summary(inv), {
      kind: 'run',
      command: 'run',
      positionals: { ARTIFACT: ['m.kiln'], TEXT: ['I loved it', 'meh', 'awful'] },
      flags: {
        file: null,
        pair: false,
        redact: false,
        json: true,
        device: undefined,
        token: null,
        offline: false,
        weights: undefined,
      },
    });
  });

  test('parseInvocation(run ARTIFACT) gives an empty TEXT list', () => {
    const inv = parseInvocation(['run', 'm.kiln', '-f', 'texts.txt'], COMMANDS, NO_ENV);
    assert.deepEqual((inv as Extract<Invocation, { kind: 'run' }>).positionals, { ARTIFACT: ['m.kiln'], TEXT: [] });
    assert.equal((inv as Extract<Invocation, { kind: 'run' }>).flags.file, 'texts.txt');
  });

  test('parseInvocation(compile SOURCE) fills every flag default', () => {
    const inv = parseInvocation(['compile', 'models/x'], COMMANDS, NO_ENV);
    assert.deepEqual(summary(inv), {
      kind: 'run',
      command: 'compile',
      positionals: { SOURCE: ['models/x'] },
      flags: {
        out: null,
        'max-length': undefined,
        // The device's default (32 on the CPU, 128 on a GPU), chosen when the device is known.
        'max-batch': undefined,
        precision: 'fp32',
        'no-prune': false,
        'quantize-embeddings': false,
        'keep-fp32': [],
        verify: null,
        'max-accuracy-drop': 1,
        'min-agreement': 0.98,
        task: undefined,
        pooling: undefined,
        'no-normalize': false,
        calibrate: null,
        'function-to-apply': undefined,
        'image-size': undefined,
        mean: undefined,
        std: undefined,
        channels: undefined,
        resize: undefined,
        labels: undefined,
        'no-cache': false,
        json: false,
        device: undefined,
        token: null,
        offline: false,
        weights: undefined,
      },
    });
  });

  test('parseInvocation(compile SOURCE with every flag) parses each value', () => {
    const inv = parseInvocation(
      [
        'compile',
        'models/x',
        '-o',
        'out.kiln',
        '--max-length=64',
        '--max-batch',
        '1024',
        '--precision',
        'int8',
        '--quantize-embeddings',
        '--keep-fp32',
        '/classifier*, /pre_classifier/MatMul',
        '--verify',
        'dev.tsv',
        '--max-accuracy-drop',
        '0.5',
        '--min-agreement',
        '0.99',
        '--task',
        'feature-extraction',
        '--pooling',
        'cls',
        '--no-normalize',
        '--function-to-apply',
        'none',
        '--no-cache',
        '--json',
      ],
      COMMANDS,
      NO_ENV,
    );
    assert.deepEqual((inv as Extract<Invocation, { kind: 'run' }>).flags, {
      out: 'out.kiln',
      'max-length': 64,
      'max-batch': 1024,
      precision: 'int8',
      'no-prune': false,
      'quantize-embeddings': true,
      'keep-fp32': ['/classifier*', '/pre_classifier/MatMul'],
      verify: 'dev.tsv',
      'max-accuracy-drop': 0.5,
      'min-agreement': 0.99,
      task: 'feature-extraction',
      pooling: 'cls',
      'no-normalize': true,
      calibrate: null,
      'function-to-apply': 'none',
      'image-size': undefined,
      mean: undefined,
      std: undefined,
      channels: undefined,
      resize: undefined,
      labels: undefined,
      'no-cache': true,
      json: true,
      device: undefined,
      token: null,
      offline: false,
      weights: undefined,
    });
    assert.throws(() => parseInvocation(['compile', 'x', '--precision', 'bf16'], COMMANDS, NO_ENV), {
      code: 'KILN_ERR_CLI_INVALID_FLAG',
      message: /--precision must be one of fp32, int8, fp16, got "bf16"/,
    });
    assert.throws(() => parseInvocation(['compile', 'x', '--min-agreement', '1.5'], COMMANDS, NO_ENV), {
      code: 'KILN_ERR_CLI_INVALID_FLAG',
      message: /a number in \[0, 1\]/,
    });
  });

  test('parseInvocation(serve ARTIFACT) defaults to host 127.0.0.1, port 8080, no API key', () => {
    const inv = parseInvocation(['serve', 'm.kiln'], COMMANDS, NO_ENV);
    assert.deepEqual((inv as Extract<Invocation, { kind: 'run' }>).flags, {
      host: '127.0.0.1',
      port: null,
      'api-key': null,
      'timeout-ms': null,
      'max-text-chars': 20000,
      'max-client-batch': 1024,
      'max-labels': 32,
      replicas: undefined,
      'threads-per-replica': undefined,
      'max-batch': undefined,
      'max-batch-tokens': undefined,
      'max-delay-ms': undefined,
      'max-queue': 4096,
      'max-queue-ms': null,
      pipeline: 2,
      'replica-nice': 10,
      buckets: undefined,
      device: undefined,
      token: null,
      offline: false,
      weights: undefined,
    });
  });

  test('parseInvocation(serve --replicas 3 --buckets 16,48,128) parses the runtime flags; bad buckets name the rule', () => {
    const inv = parseInvocation(
      ['serve', 'm.kiln', '--replicas', '3', '--buckets', '16,48,128'],
      COMMANDS,
      NO_ENV,
    ) as Extract<Invocation, { kind: 'run' }>;
    assert.equal(inv.flags.replicas, 3);
    assert.deepEqual(inv.flags.buckets, [16, 48, 128]);
    assert.throws(() => parseInvocation(['serve', 'm.kiln', '--buckets', '64,32'], COMMANDS, NO_ENV), {
      code: 'KILN_ERR_CLI_INVALID_FLAG',
      message: /ascending integers/,
    });
    assert.throws(() => parseInvocation(['serve', 'm.kiln', '--replicas', 'lots'], COMMANDS, NO_ENV), {
      code: 'KILN_ERR_CLI_INVALID_FLAG',
    });
  });
});
