/**
 * `kiln deploy k8s` writes YAML that validates against the Kubernetes schemas of its kinds
 * (vendored, reduced: test/fixtures/k8s-schemas), sized from the artifact's manifest; for a Hub
 * model (served by the fake Hub on 127.0.0.1), pods pull it in an init container.
 */
import assert from 'node:assert/strict';
import { cp, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import type { Manifest, TunedLayout } from '../../src/model/artifact.js';
import { type FakeHub, HUB_TOKEN, startFakeHub } from '../fixtures/fake-hub.js';
import { embeddedModelFiles } from '../fixtures/hub-repos.js';
import { EMBEDDED_MODEL, errorCode, kiln, REPO, SHARED_CACHE_ENV, tempDir } from '../fixtures/models.js';

const SCHEMAS: Record<string, string> = {
  Deployment: 'deployment-apps-v1.json',
  Service: 'service-v1.json',
  HorizontalPodAutoscaler: 'horizontalpodautoscaler-autoscaling-v2.json',
  PodDisruptionBudget: 'poddisruptionbudget-policy-v1.json',
  Job: 'job-batch-v1.json',
  InferenceService: 'inferenceservice-serving-kserve-v1beta1.json',
};
const MI = 1024 * 1024;

// biome-ignore lint/suspicious/noExplicitAny: a parsed YAML document of any Kubernetes kind, walked freely by the assertions.
type Doc = any;

const ajv = new Ajv({ allErrors: true, strict: false });
async function schemaErrors(doc: Doc): Promise<string | null> {
  const file = SCHEMAS[doc?.kind as string];
  if (!file) return `no schema for kind ${JSON.stringify(doc?.kind)}`;
  if (!ajv.getSchema(file)) {
    ajv.addSchema(JSON.parse(await readFile(join(REPO, 'test', 'fixtures', 'k8s-schemas', file), 'utf8')), file);
  }
  const validate = ajv.getSchema(file)!;
  return validate(doc) ? null : ajv.errorsText(validate.errors);
}

/** Every file in DIR: name → { text, doc } with each document validated. */
async function readOutput(dir: string): Promise<Record<string, { text: string; doc: Doc }>> {
  const out: Record<string, { text: string; doc: Doc }> = {};
  for (const file of (await readdir(dir)).sort()) {
    const text = await readFile(join(dir, file), 'utf8');
    const doc = parse(text) as Doc;
    assert.equal(await schemaErrors(doc), null, `${file} does not validate`);
    out[file] = { text, doc };
  }
  return out;
}

describe('kiln deploy k8s', () => {
  let dir: string;
  let artifact: string;
  let manifest: Manifest;
  before(async () => {
    dir = await tempDir();
    artifact = join(dir, 'sst2.kiln');
    const compiled = await kiln(['compile', EMBEDDED_MODEL, '-o', artifact], { env: SHARED_CACHE_ENV });
    assert.equal(compiled.code, 0, compiled.stderr);
    manifest = JSON.parse(await readFile(join(artifact, 'manifest.json'), 'utf8')) as Manifest;
    assert.ok(manifest.memory, 'compile measures memory');
  });

  test('the vendored schemas reject a misspelled probe and a missing container name (validation has teeth)', async () => {
    const base = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' } };
    const template = (container: Doc): Doc => ({
      ...base,
      spec: { selector: { matchLabels: { a: 'b' } }, template: { spec: { containers: [container] } } },
    });
    assert.equal(await schemaErrors(template({ name: 'c', image: 'i' })), null);
    assert.match((await schemaErrors(template({ name: 'c', readinesProbe: {} }))) ?? '', /additional properties/);
    assert.match((await schemaErrors(template({ image: 'i' }))) ?? '', /required property 'name'/);
  });

  test('untuned: Deployment, Service, HPA, PDB validate; 1 CPU, memory from the manifest, health probes, drain', async () => {
    const out = join(dir, 'untuned');
    const result = await kiln([
      'deploy',
      'k8s',
      artifact,
      '--image',
      'registry.example.com/sst2:1',
      '--replicas',
      '3',
      '--min',
      '2',
      '--max',
      '7',
      '-o',
      out,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const files = await readOutput(out);
    assert.deepEqual(Object.keys(files), ['deployment.yaml', 'hpa.yaml', 'pdb.yaml', 'service.yaml']);
    const deployment = files['deployment.yaml']!.doc;
    assert.equal(deployment.spec.replicas, 3);
    const pod = deployment.spec.template.spec;
    const [container] = pod.containers;
    assert.equal(container.image, 'registry.example.com/sst2:1');
    assert.deepEqual(container.args, [
      'serve',
      `/models/${manifest.name}`,
      '--host',
      '0.0.0.0',
      '--port',
      '8080',
      '--replicas',
      '1',
      '--threads-per-replica',
      '1',
    ]);
    const memory = Math.ceil(((manifest.memory!.processBytes ?? 0) + manifest.memory!.perReplicaBytes) / MI);
    assert.deepEqual(container.resources.requests, { cpu: '1', memory: `${memory}Mi` });
    assert.equal(container.resources.limits.cpu, '1');
    assert.ok(parseInt(container.resources.limits.memory, 10) > memory, 'memory limit has headroom over the request');
    assert.equal(container.readinessProbe.httpGet.path, '/v2/health/ready');
    assert.equal(container.livenessProbe.httpGet.path, '/v2/health/live');
    assert.equal(container.ports[0].containerPort, 8080);
    assert.ok(container.lifecycle.preStop.exec.command.length > 0);
    assert.equal(pod.terminationGracePeriodSeconds, 30);
    // Selectors match the pod labels, or the Service, HPA and PDB would target nothing.
    const labels = deployment.spec.template.metadata.labels;
    for (const [key, value] of Object.entries(deployment.spec.selector.matchLabels)) assert.equal(labels[key], value);
    assert.deepEqual(files['service.yaml']!.doc.spec.selector, deployment.spec.selector.matchLabels);
    assert.deepEqual(files['service.yaml']!.doc.spec.ports[0], {
      name: 'http',
      port: 80,
      targetPort: 'http',
      protocol: 'TCP',
    });
    assert.deepEqual(files['pdb.yaml']!.doc.spec, { minAvailable: 1, selector: deployment.spec.selector });
    const hpa = files['hpa.yaml']!;
    assert.deepEqual(hpa.doc.spec.scaleTargetRef, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: deployment.metadata.name,
    });
    assert.equal(hpa.doc.spec.minReplicas, 2);
    assert.equal(hpa.doc.spec.maxReplicas, 7);
    assert.equal(hpa.doc.spec.metrics[0].resource.name, 'cpu');
    // The alternative is a comment: present in the text, absent from the object.
    assert.match(hpa.text, /^\s*#.*\n(\s*#.*\n)*\s*#\s+name: kiln_queue_depth$/m);
    assert.equal(hpa.doc.spec.metrics.length, 1);
  });

  test('tuned layout: CPU = replicas × threads, memory = process + replicas × per-replica bytes, flags passed to serve', async () => {
    const tunedArtifact = join(dir, 'tuned.kiln');
    await cp(artifact, tunedArtifact, { recursive: true });
    const tuned: TunedLayout = {
      replicas: 3,
      threadsPerReplica: 2,
      maxBatch: 8,
      maxDelayMs: 2,
      requestsPerSecond: 100,
      p99Ms: 20,
      clients: 8,
      sloP99Ms: 50,
      cpu: 'test',
      cores: 6,
      tunedAt: new Date(0).toISOString(),
    };
    await writeFile(join(tunedArtifact, 'manifest.json'), JSON.stringify({ ...manifest, tuned }));
    const out = join(dir, 'tuned');
    const result = await kiln(['deploy', 'k8s', tunedArtifact, '--image', 'img:1', '-o', out]);
    assert.equal(result.code, 0, result.stderr);
    const [container] = (await readOutput(out))['deployment.yaml']!.doc.spec.template.spec.containers;
    const memory = Math.ceil(((manifest.memory!.processBytes ?? 0) + 3 * manifest.memory!.perReplicaBytes) / MI);
    assert.deepEqual(container.resources.requests, { cpu: '6', memory: `${memory}Mi` });
    assert.equal(container.resources.limits.cpu, '6');
    assert.deepEqual(container.args.slice(-4), ['--replicas', '3', '--threads-per-replica', '2']);
  });

  test('--kserve writes only an InferenceService with the same container', async () => {
    const out = join(dir, 'kserve');
    const result = await kiln([
      'deploy',
      'k8s',
      artifact,
      '--image',
      'img:1',
      '--kserve',
      '--min',
      '1',
      '--max',
      '4',
      '-o',
      out,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const files = await readOutput(out);
    assert.deepEqual(Object.keys(files), ['inferenceservice.yaml']);
    const predictor = files['inferenceservice.yaml']!.doc.spec.predictor;
    assert.equal(predictor.maxReplicas, 4);
    assert.equal(predictor.containers[0].readinessProbe.httpGet.path, '/v2/health/ready');
  });

  test('--job writes an Indexed Job: completions = parallelism = N, shard index from the downward API', async () => {
    const out = join(dir, 'job');
    const result = await kiln([
      'deploy',
      'k8s',
      artifact,
      '--image',
      'img:1',
      '--job',
      '--shards',
      '4',
      '--input',
      '/data/reviews.jsonl',
      '-o',
      out,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const files = await readOutput(out);
    assert.deepEqual(Object.keys(files), ['job.yaml']);
    const spec = files['job.yaml']!.doc.spec;
    assert.equal(spec.completionMode, 'Indexed');
    assert.equal(spec.completions, 4);
    assert.equal(spec.parallelism, 4);
    const [container] = spec.template.spec.containers;
    assert.deepEqual(container.args, [
      'batch',
      `/models/${manifest.name}`,
      '/data/reviews.jsonl',
      '--shard',
      '$(JOB_COMPLETION_INDEX)/4',
      '-o',
      '/data/reviews.predictions-$(JOB_COMPLETION_INDEX).jsonl',
    ]);
    assert.deepEqual(container.env, [
      {
        name: 'JOB_COMPLETION_INDEX',
        valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" } },
      },
    ]);
  });

  const bad: [string, string[], RegExp][] = [
    [
      '--job without --shards',
      ['--image', 'i', '--job', '--input', '/data/x.jsonl'],
      /--job needs --shards N and --input PATH/,
    ],
    [
      '--job with --kserve',
      ['--image', 'i', '--job', '--kserve', '--shards', '2', '--input', '/x'],
      /--job and --kserve both given/,
    ],
    ['--min above --max', ['--image', 'i', '--min', '5', '--max', '2'], /--min 5 is above --max 2/],
    ['no --image', [], /--image is missing/],
  ];
  for (const [name, args, message] of bad) {
    test(`${name} → KILN_ERR_DEPLOY_KUBERNETES_FLAGS, nothing written`, async () => {
      const out = join(dir, `bad-${name.replace(/\W+/g, '-')}`);
      const result = await kiln(['deploy', 'k8s', artifact, ...args, '-o', out]);
      assert.equal(result.code, 1);
      assert.equal(errorCode(result.stderr), 'KILN_ERR_DEPLOY_KUBERNETES_FLAGS');
      assert.match(result.stderr, message);
      await assert.rejects(readdir(out), { code: 'ENOENT' });
    });
  }
});

describe('kiln deploy k8s hf:ORG/NAME', () => {
  const HF_HOME_MOUNT = { name: 'hf-home', mountPath: '/var/cache/huggingface' };
  let hub: FakeHub;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let commit: string;
  before(async () => {
    dir = await tempDir('kiln-deploy-k8s-hub-');
    hub = await startFakeHub([{ id: 'kiln-test/sst2', files: await embeddedModelFiles(), refs: ['v1'] }]);
    commit = hub.commitOf('kiln-test/sst2');
    // A token in the environment of the local compile: it must not reach the YAML.
    env = {
      HF_ENDPOINT: hub.url,
      HF_HOME: join(dir, 'hf-home'),
      HF_HUB_OFFLINE: '',
      HF_TOKEN: HUB_TOKEN,
      KILN_CACHE_DIR: join(dir, 'kiln-cache'),
    };
  });
  after(async () => {
    await hub?.close();
  });

  /** Every env entry of `container` by name. */
  const envOf = (container: Doc): Record<string, Doc> =>
    Object.fromEntries(((container.env ?? []) as Doc[]).map((e) => [e.name, e]));

  test('a branch: the init container pulls into an emptyDir at HF_HOME, serve reads it offline, the token only as a secretKeyRef', async () => {
    const out = join(dir, 'branch');
    const args = ['hf:kiln-test/sst2', '--image', 'img:1', '--hf-token-secret', 'hf-token', '-o', out];
    const result = await kiln(['deploy', 'k8s', ...args], { env, cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    const files = await readOutput(out);
    assert.deepEqual(Object.keys(files), ['deployment.yaml', 'hpa.yaml', 'pdb.yaml', 'service.yaml']);
    const pod = files['deployment.yaml']!.doc.spec.template.spec;
    assert.deepEqual(pod.volumes, [{ name: 'hf-home', emptyDir: {} }]);
    const [init] = pod.initContainers;
    assert.equal(pod.initContainers.length, 1);
    assert.equal(init.image, 'img:1');
    assert.deepEqual(init.args, ['pull', 'hf:kiln-test/sst2@main']);
    assert.deepEqual(init.volumeMounts, [HF_HOME_MOUNT]);
    assert.deepEqual(envOf(init), {
      HF_HOME: { name: 'HF_HOME', value: '/var/cache/huggingface' },
      HF_ENDPOINT: { name: 'HF_ENDPOINT', value: hub.url },
      HF_TOKEN: { name: 'HF_TOKEN', valueFrom: { secretKeyRef: { name: 'hf-token', key: 'HF_TOKEN' } } },
    });
    const [serve] = pod.containers;
    assert.deepEqual(serve.args.slice(0, 2), ['serve', 'hf:kiln-test/sst2@main']);
    assert.deepEqual(serve.volumeMounts, [HF_HOME_MOUNT]);
    assert.deepEqual(envOf(serve), {
      HF_HOME: { name: 'HF_HOME', value: '/var/cache/huggingface' },
      HF_HUB_OFFLINE: { name: 'HF_HUB_OFFLINE', value: '1' },
    });
    // Sized from the manifest of the model compiled here through the caches.
    assert.match(serve.resources.requests.memory, /^\d+Mi$/);
    for (const f of Object.values(files)) assert.ok(!f.text.includes(HUB_TOKEN), 'the token is not in the YAML');
    assert.ok(!result.stderr.includes(HUB_TOKEN) && !result.stdout.includes(HUB_TOKEN));
    assert.match(
      result.stderr,
      new RegExp(`Pin a commit sha \\(compiled here at ${commit}: hf:kiln-test/sst2@${commit}\\)`),
    );
  });

  test('a pinned commit, --kserve, --hf-cache-pvc: the claim at HF_HOME, no token env, no pinning note', async () => {
    const out = join(dir, 'kserve');
    const model = `hf:kiln-test/sst2@${commit}`;
    const args = [model, '--image', 'img:1', '--kserve', '--hf-cache-pvc', 'hf-cache', '-o', out];
    const result = await kiln(['deploy', 'k8s', ...args], { env, cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    const predictor = (await readOutput(out))['inferenceservice.yaml']!.doc.spec.predictor;
    assert.deepEqual(predictor.volumes, [{ name: 'hf-home', persistentVolumeClaim: { claimName: 'hf-cache' } }]);
    assert.deepEqual(predictor.initContainers[0].args, ['pull', model]);
    assert.deepEqual(predictor.initContainers[0].volumeMounts, [HF_HOME_MOUNT]);
    assert.equal(envOf(predictor.initContainers[0]).HF_TOKEN, undefined, 'no token unless a Secret is named');
    const [serve] = predictor.containers;
    assert.deepEqual(serve.args.slice(0, 2), ['serve', model]);
    assert.deepEqual(serve.volumeMounts, [HF_HOME_MOUNT]);
    assert.equal(envOf(serve).HF_HUB_OFFLINE.value, '1');
    assert.doesNotMatch(result.stderr, /Pin a commit/);
  });

  test('--job: the batch container reads the pulled model offline beside the shard index', async () => {
    const out = join(dir, 'job');
    const args = ['hf:kiln-test/sst2@v1', '--image', 'img:1', '--job', '--shards', '2', '--input', '/data/x.jsonl'];
    const result = await kiln(['deploy', 'k8s', ...args, '--hf-token-secret', 'hub:token', '-o', out], {
      env,
      cwd: dir,
    });
    assert.equal(result.code, 0, result.stderr);
    const pod = (await readOutput(out))['job.yaml']!.doc.spec.template.spec;
    assert.deepEqual(pod.initContainers[0].args, ['pull', 'hf:kiln-test/sst2@v1']);
    assert.deepEqual(envOf(pod.initContainers[0]).HF_TOKEN.valueFrom, {
      secretKeyRef: { name: 'hub', key: 'token' },
    });
    const [batch] = pod.containers;
    assert.deepEqual(batch.args.slice(0, 2), ['batch', 'hf:kiln-test/sst2@v1']);
    assert.deepEqual(batch.volumeMounts, [HF_HOME_MOUNT]);
    assert.deepEqual(Object.keys(envOf(batch)), ['JOB_COMPLETION_INDEX', 'HF_HOME', 'HF_HUB_OFFLINE']);
    assert.match(result.stderr, /"v1" is a branch or tag/);
  });

  test('--hf-token-secret with a local artifact → KILN_ERR_DEPLOY_KUBERNETES_FLAGS, nothing written', async () => {
    const out = join(dir, 'local');
    const result = await kiln(
      ['deploy', 'k8s', EMBEDDED_MODEL, '--image', 'i', '--hf-token-secret', 'hf-token', '-o', out],
      { env, cwd: dir },
    );
    assert.equal(result.code, 1);
    assert.equal(errorCode(result.stderr), 'KILN_ERR_DEPLOY_KUBERNETES_FLAGS');
    assert.match(result.stderr, /only apply to a Hub model/);
    await assert.rejects(readdir(out), { code: 'ENOENT' });
  });

  test('--hf-token-secret that is no Secret name → KILN_ERR_CLI_INVALID_FLAG', async () => {
    const result = await kiln(['deploy', 'k8s', 'hf:kiln-test/sst2', '--image', 'i', '--hf-token-secret', 'HF_Token'], {
      env,
      cwd: dir,
    });
    assert.equal(result.code, 1);
    assert.equal(errorCode(result.stderr), 'KILN_ERR_CLI_INVALID_FLAG');
  });
});
