/**
 * What a task is: one module (a folder under src/tasks/) that owns everything kiln does
 * differently for it — detection, the compile-time head check and graph tail, the runtime class
 * (pre- and post-processing, its batcher), the routes only it serves, and what /predict,
 * /invocations, KServe v2, `kiln run`, `kiln batch`, `kiln bench` and `kiln serve` make of its
 * answers. The registry (registry.ts) lists the modules; the compiler, server, CLI, bench and
 * batch iterate it and never branch on a task name.
 */
import type { Manifest, Pooling, ScoreFunction, Task } from '../model/artifact.js';
import type { ModelProto } from '../onnx/proto.js';
import type { InferOptions, ModelInput, ModelOptions, TaskModel } from '../runtime/task-model.js';
import type { TensorInput } from './kserve-tensors.js';
import type { RouteContext, RouteSpec } from './route.js';

/**
 * What users give a task: texts (tokenized on the calling thread) or image files. Decides how
 * `kiln run`, `bench` and `batch` read their inputs, which body fields /predict and /invocations
 * read, and whether compile resolves a tokenizer or image preprocessing.
 */
export type InputKind = 'text' | 'image';

/** Any task's runtime class. */
// biome-ignore lint/suspicious/noExplicitAny: the registry holds modules of every task's class.
export type AnyTaskModel = TaskModel<any, any>;

/** What a runtime class answers per input. */
export type AnswerOf<M extends AnyTaskModel> = Awaited<ReturnType<M['infer']>>[number];

/** What compile knows when it checks a graph's head. */
export interface HeadFacts {
  /** How errors name the model (the checkpoint folder, or the graph file). */
  path: string;
  /** config.json's id2label, in logit order; empty for tasks whose labels are 'none'. */
  labels: readonly string[];
  /** config.json's hidden size, when the graph leaves it open. */
  hiddenSize: number | null;
  /** What {@link CompileHooks.headOptions} resolved. */
  options: HeadOptions | null;
  /** The artifact's max length (tokens per input), for heads whose row is per token. */
  maxLength: number;
}

/** A task's head options, resolved at compile from flags and the model's own files; each task sets its own. */
export interface HeadOptions {
  /** feature-extraction: how token states become one vector. */
  pooling?: Pooling;
  /** feature-extraction: scale vectors to unit length. */
  normalize?: boolean;
  /** Classifiers: what turns logits into scores. */
  functionToApply?: ScoreFunction;
  /** feature-extraction: prompts by name the manifest records; absent when the model has none. */
  prompts?: Record<string, string>;
}

/** What a head check found: the width of each output row and what the manifest records. */
export interface CheckedHead {
  /** Values per input in the compiled graph's output row (labels, or the vector's size). */
  width: number;
  /** Manifest fields this head adds (an embedder's `embedding`). */
  manifest: Partial<Pick<Manifest, 'embedding' | 'functionToApply'>>;
}

export interface CompileHooks {
  /** 'required': config.json's id2label names the head's outputs (classifiers); 'none': not read. */
  readonly labels: 'required' | 'none';
  /**
   * True when the task reads the encoder's token states: kiln import drops the checkpoint's
   * head, and an ONNX folder whose graph has a head is compiled from its checkpoint instead.
   */
  readonly headless?: boolean;
  /** Head options from the compile flags and the model's folder (`modelHome`); absent when the task has none. */
  headOptions?(flags: HeadOptions, modelHome: string): Promise<HeadOptions>;
  /** Checks the graph's outputs are what the task reads (KILN_ERR_MODEL_OUTPUTS otherwise). */
  checkHead(model: ModelProto, facts: HeadFacts): CheckedHead;
  /** A graph tail appended before optimizing (embedding pooling), so replicas return final rows. */
  tail?(model: ModelProto, head: CheckedHead, path: string): ModelProto;
  /**
   * Why `--verify` cannot check this task: the flag's rule. Absent when it can: by the logits'
   * top label (classifiers), or by the task's answers ({@link TaskModule.verify}).
   */
  readonly verifyRefusal?: string;
  /** What each input's output row holds, for the smoke test's message ("logits per text (…)"). */
  readonly row: string;
}

/** What /predict makes of a task's answers (the route reads the body's inputs by {@link InputKind}). */
export interface PredictInputsHook<M extends AnyTaskModel> {
  /**
   * Options of the task's own read beside the shared inputs (JSON schemas by name), added to
   * /predict's schema; a request that sends one to a model of another task is refused. Their
   * values reach `answer` as `fields`.
   */
  readonly options?: Record<string, object>;
  answer(
    model: M,
    inputs: readonly ModelInput[],
    describe: (index: number) => string,
    options: InferOptions & { allScores: boolean; fields: Record<string, unknown> },
  ): Promise<object[]>;
}

/**
 * For a task whose /predict body has a shape of its own (`{"question", "context"}`,
 * `{"text", "candidate_labels"}`): the fields it adds to the route's schema, and how it answers
 * such a body. Fields of the body other than these (and `model`) are refused.
 */
export interface PredictBodyHook<M extends AnyTaskModel> {
  /** The body's fields as JSON schema properties; the route's schema lists every task's. */
  readonly fields: Readonly<Record<string, object>>;
  /** The body's shape, for the fix of an error's message: `{"question": "…", "context": "…"}`. */
  readonly expected: string;
  read(
    model: M,
    body: Readonly<Record<string, unknown>>,
    context: Pick<RouteContext, 'limits' | 'deadline'> & {
      /** The coded 400 for a body that is not {@link expected}. */
      invalid: (problem: string) => Error;
    },
  ): Promise<object>;
}

/** How /predict reads a task's requests: the shared text or image inputs, or a body of the task's own. */
export type PredictHook<M extends AnyTaskModel> = PredictInputsHook<M> | PredictBodyHook<M>;

/**
 * What SageMaker's /invocations answers per input of an `{"inputs": …}` body (a text, a text
 * pair, an image); `allScores` is the input's `return_all_scores`.
 */
export interface InvocationsInputsHook<M extends AnyTaskModel> {
  answers(
    model: M,
    inputs: readonly ModelInput[],
    describe: (index: number) => string,
    options: { deadline: number | undefined },
  ): Promise<Array<(allScores: boolean) => object>>;
}

/**
 * For a task whose /invocations body has a shape of its own (a ranker's `{"query", "texts"}`):
 * reads one JSON body, or one line of a JSON Lines body, and answers it.
 */
export interface InvocationsBodyHook<M extends AnyTaskModel> {
  /** The body's shape, for the fix of an error's message: `{"query": "…", "texts": ["…", …]}`. */
  readonly expected: string;
  read(
    model: M,
    body: unknown,
    context: Pick<RouteContext, 'limits' | 'deadline'> & {
      /** The coded 400 for a body (or line) that is not {@link expected}, naming where it is. */
      invalid: (problem: string) => Error;
    },
  ): Promise<object>;
}

/** How SageMaker's /invocations reads a task's requests: `{"inputs": …}` per input, or a body of the task's own. */
export type InvocationsHook<M extends AnyTaskModel> = InvocationsInputsHook<M> | InvocationsBodyHook<M>;

/** A KServe v2 tensor's metadata. */
export interface TensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
}

/** A KServe v2 output tensor. */
export interface TensorOutput extends TensorMetadata {
  data: unknown[];
}

export interface KServeHooks<M extends AnyTaskModel> {
  /** The model metadata's inputs (the protocol's `inputs`). */
  inputs(model: M): TensorMetadata[];
  /** The model metadata's outputs; an infer request may ask for any of these by name. */
  outputs(model: M): TensorMetadata[];
  /** Runs an infer request's inputs; answers every output {@link outputs} names. */
  infer(
    model: M,
    inputs: readonly TensorInput[],
    context: Pick<RouteContext, 'limits' | 'deadline'>,
  ): Promise<Record<string, TensorOutput>>;
}

/** How one answer reads outside HTTP: `kiln run` and `kiln batch`. */
export interface AnswerHooks<M extends AnyTaskModel> {
  /** `kiln run --json`'s fields. */
  json(answer: AnswerOf<M>): object;
  /** `kiln run`'s human line (before the latency and the input). */
  line(answer: AnswerOf<M>): string;
  /** `kiln batch`'s JSONL fields; a `label` is counted in the summary; a task may add fields of its own (an answer's `start`). */
  batch(answer: AnswerOf<M>): {
    label?: string;
    score?: number;
    embedding?: number[];
    labels?: object[];
    entities?: object[];
    redacted?: string;
    [field: string]: unknown;
  };
  /** The task answers `--redact` (run, batch): each text with its entities replaced by `[LABEL]`. */
  readonly redacts?: boolean;
}

export interface BatchHooks<M extends AnyTaskModel> {
  /** What the progress line says the job does ("classifying"). */
  readonly verb: string;
  /** The summary's part on the answers: the label counts, or the vectors' size. */
  summary(model: M, labelCounts: string): string;
  /** Width of the vectors `--format npy` writes; absent when the task answers no vectors. */
  npyWidth?(model: M): number;
}

/** One row of a `--verify` file, as the source and the compiled model answered it. */
export interface VerifiedRow {
  /** What agreement counts in this row (its tokens; 1 for a row with one answer), and how many agree. */
  units: number;
  agreeing: number;
  /** Whether each answer matches the row's gold (an answer, a label); absent when the row has none. */
  correct?: { reference: boolean; compiled: boolean };
  /** |Δ| of the scores both answered for the same thing (a token's label, the same answer), one per pair. */
  scoreDeltas: number[];
  /** How the row's answers read where they differ (the first differing token, the answer texts). */
  reference: string;
  compiled: string;
  /** The row's gold, as the flipped-row list shows it. */
  gold?: string;
}

/**
 * `compile --verify` for a task whose rows become answers (entities, spans, ranked labels): the
 * fp32 source and the compiled model both loaded as the task's runtime class, every row of the
 * file answered by each (the inputs `kiln batch` reads), and the answers compared.
 */
export interface VerifyHooks<M extends AnyTaskModel> {
  /** What agreement counts, plural, for the summary and errors ("tokens", "answers"). */
  readonly unit: string;
  /** Answers a chunk of rows (with the options the comparison needs: every token's label). */
  answer(model: M, inputs: readonly ModelInput[], describe: (index: number) => string): Promise<AnswerOf<M>[]>;
  /**
   * Compares one row's answers, against its gold when it has one (an example's `label` or
   * `answers`); a gold no answer could match throws KILN_ERR_DATA_INVALID naming `row`.
   */
  compare(
    reference: AnswerOf<M>,
    compiled: AnswerOf<M>,
    gold: { label?: string | number; answers?: readonly string[] },
    row: { path: string; line: number },
  ): VerifiedRow;
}

export interface TaskModule<M extends AnyTaskModel = AnyTaskModel> {
  readonly name: Task;
  readonly input: InputKind;
  /** The artifact format version a manifest of this task is written with: the oldest that reads it right. */
  readonly formatVersion: number;
  /** Detection, tried in the registry's order when `--task` is not given. */
  readonly detect: {
    /** config.json's `architectures[0]` (a Hugging Face class name) and its labels (id2label) say the task. */
    architecture?(className: string, labels: readonly string[]): boolean;
    /** The ONNX graph says the task (no config.json, or a class name no task claims). */
    graph?(model: ModelProto): boolean;
    /** The task when nothing says otherwise (one module). */
    readonly fallback?: boolean;
  };
  readonly compile: CompileHooks;
  /** `compile --verify` by the task's answers; absent: by the logits' top label, or refused (`compile.verifyRefusal`). */
  readonly verify?: VerifyHooks<M>;
  /** Starts the task's runtime class on an artifact already read. */
  open(dir: string, manifest: Manifest, options: ModelOptions): Promise<M>;
  /** Routes only this task serves (/v1/embeddings); the shared ones read the hooks below. */
  readonly routes: readonly RouteSpec[];
  /** Absent when /predict does not serve the task. */
  readonly predict?: PredictHook<M>;
  /** Absent when /invocations does not serve the task. */
  readonly invocations?: InvocationsHook<M>;
  readonly kserve: KServeHooks<M>;
  readonly answers: AnswerHooks<M>;
  readonly batch: BatchHooks<M>;
  readonly bench: {
    /** Throughput's unit ("texts/s"). */
    readonly unit: string;
    /** One input as an HTTP request to the task's main route (bench over `--url`). */
    request(input: ModelInput): { path: string; body: object };
  };
  /**
   * TEI's `/info` `model_type` for the task's models (`{"embedding": {"pooling"}}`); absent:
   * `{"classifier": {"id2label", "label2id"}}` from the manifest's labels.
   */
  readonly info?: { modelType(manifest: Manifest): Record<string, object> };
  readonly serve: {
    /** The ready line's part on what the model answers. */
    describe(manifest: Manifest): string;
    /** A curl command that exercises the model's main route. */
    example(url: string, name: string, named: boolean): string;
  };
}

/** A task module with its runtime class's type checked against every hook. */
export function defineTask<M extends AnyTaskModel>(module: TaskModule<M>): TaskModule<M> {
  return module;
}
