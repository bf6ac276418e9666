import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ERRORS,
  type ErrorCode,
  type ErrorParams,
  isKilnError,
  KilnError,
  toKilnError,
} from '../../src/core/errors.js';

const CODES = Object.keys(ERRORS) as ErrorCode[];

/**
 * Params for any message template: every property reads as a two-item list whose text form is
 * `<name>`, so `${p.x}` gives "<x>", `q(p.x)` gives ["<x>-a","<x>-b"] and `p.x.join()` works.
 * Records which params the template read.
 */
function sampleParams(read: Set<string>): never {
  return new Proxy(
    {},
    {
      get(_target, prop) {
        if (typeof prop !== 'string') return undefined;
        read.add(prop);
        const value = [`<${prop}>-a`, `<${prop}>-b`];
        return Object.assign(value, { toString: () => `<${prop}>` });
      },
    },
  ) as never;
}

describe('ERRORS', () => {
  test('ERRORS has entries', () => {
    assert.ok(CODES.length > 0);
  });

  for (const code of CODES) {
    test(`ERRORS.${code}: code, status and when are well-formed, and new KilnError renders every param`, () => {
      const entry = ERRORS[code];
      assert.match(code, /^KILN_ERR_[A-Z0-9_]+$/);
      assert.ok(Number.isInteger(entry.status) && entry.status >= 400 && entry.status <= 599, `status ${entry.status}`);
      assert.ok(entry.when.trim().length > 0);

      const read = new Set<string>();
      const err = new KilnError(code, sampleParams(read) as ErrorParams<typeof code>);
      assert.equal(err.code, code);
      assert.equal(err.status, entry.status);
      assert.equal(err.name, 'KilnError');
      assert.ok(err.message.trim().length > 0);
      assert.doesNotMatch(err.message, /undefined|\[object Object\]|NaN/);
      for (const name of read) {
        assert.ok(err.message.includes(`<${name}>`), `param ${name} does not appear in: ${err.message}`);
      }
    });
  }
});

describe('KilnError', () => {
  const rendered: [string, KilnError][] = [
    [
      'KILN_ERR_CLI_INVALID_FLAG',
      new KilnError('KILN_ERR_CLI_INVALID_FLAG', { flag: '--max-batch', rule: 'an integer in [1, 1024]', value: '0' }),
    ],
    ['KILN_ERR_HTTP_TOO_MANY_TEXTS', new KilnError('KILN_ERR_HTTP_TOO_MANY_TEXTS', { count: 300, limit: 256 })],
    [
      'KILN_ERR_CLI_UNKNOWN_COMMAND',
      new KilnError('KILN_ERR_CLI_UNKNOWN_COMMAND', { command: 'frob', known: ['compile', 'run'] }),
    ],
  ];
  const expected: Record<string, string> = {
    KILN_ERR_CLI_INVALID_FLAG: '--max-batch must be an integer in [1, 1024], got "0"',
    KILN_ERR_HTTP_TOO_MANY_TEXTS:
      'the request has 300 inputs (texts or images); at most 256 are accepted per request, split it into several requests (or use kiln batch)',
    KILN_ERR_CLI_UNKNOWN_COMMAND:
      'unknown command "frob"; commands are: compile, run. Run "kiln --help" for what each does',
  };
  for (const [code, err] of rendered) {
    test(`new KilnError(${code}, params).message reads as documented`, () => {
      assert.equal(err.message, expected[code]);
    });
  }

  test('new KilnError(code, params, { cause }) keeps the cause and params', () => {
    const cause = new Error('EACCES: permission denied');
    const err = new KilnError('KILN_ERR_CACHE_IO', { path: '/c', reason: cause.message }, { cause });
    assert.equal(err.cause, cause);
    assert.deepEqual(err.params, { path: '/c', reason: 'EACCES: permission denied' });
    assert.ok(err instanceof Error);
    assert.ok(isKilnError(err));
    assert.equal(isKilnError(cause), false);
  });

  test('KilnError.toJSON() is {error: {code, message}} and nothing else', () => {
    const err = new KilnError('KILN_ERR_HTTP_NOT_READY', {});
    assert.deepEqual(JSON.parse(JSON.stringify(err)), {
      error: { code: 'KILN_ERR_HTTP_NOT_READY', message: err.message },
    });
    assert.deepEqual(err.toJSON(), {
      error: {
        code: 'KILN_ERR_HTTP_NOT_READY',
        message: 'the model is still loading; retry when GET /ping answers 200',
      },
    });
  });
});

describe('toKilnError', () => {
  test('toKilnError(KilnError) returns the same object', () => {
    const err = new KilnError('KILN_ERR_INPUT_NO_TEXTS', {});
    assert.equal(toKilnError(err), err);
  });

  const foreign: [string, unknown, string][] = [
    ['a plain Error', new TypeError('x is not a function'), 'x is not a function'],
    ['a string', 'boom', 'boom'],
    ['a number', 42, '42'],
  ];
  for (const [what, thrown, reason] of foreign) {
    test(`toKilnError(${what}) wraps it as KILN_ERR_INTERNAL with the cause kept`, () => {
      const err = toKilnError(thrown);
      assert.ok(err instanceof KilnError);
      assert.equal(err.code, 'KILN_ERR_INTERNAL');
      assert.equal(err.status, 500);
      assert.equal(err.cause, thrown);
      assert.deepEqual(err.params, { reason });
      assert.equal(err.message, `internal error: ${reason}; run with KILN_DEBUG=1 for a stack trace and report it`);
    });
  }
});

test('new KilnError(a 429 code) skips the stack (refusals are hot), other codes keep it, and Error.stackTraceLimit is restored', () => {
  const before = Error.stackTraceLimit;
  const refusal = new KilnError('KILN_ERR_QUEUE_FULL', { depth: 8, maxQueue: 8 });
  assert.equal(refusal.stack?.split('\n').length, 1, 'message line only');
  assert.equal(Error.stackTraceLimit, before);
  const other = new KilnError('KILN_ERR_CLI_UNKNOWN_FLAG', { command: 'run', flag: '--x' });
  assert.ok((other.stack?.split('\n').length ?? 0) > 1, 'a stack for errors that are not refusals');
});
