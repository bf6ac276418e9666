/**
 * kiln as a library (`import { compile, loadModel, createServer, bench } from 'kiln'`): the
 * four things the command line does, as functions that take one options object, and the types
 * of their options and results, among them each task's runtime class (what `loadModel` gives,
 * narrowed by its `task`) with its requests and answers. docs/api.md shows each with an example.
 */

export type { LoadModelOptions, OnCompile, RuntimeOptions } from './api/open.js';
export { loadModel } from './api/open.js';
export type { CreateServerOptions, DrainOptions, Server } from './api/serve.js';
export { createServer } from './api/serve.js';
export type { BenchMode, BenchOptions } from './bench/bench.js';
export { bench } from './bench/bench.js';
export type { ConcurrencyPoint, LatencySummary, ThroughputPoint } from './bench/measure.js';
export type { BenchResult } from './bench/result.js';
export type { CompileOptions, CompileResult, CompileStep, Precision } from './compiler/compile.js';
export { compile } from './compiler/compile.js';
export type { ErrorCode } from './core/errors.js';
export { KilnError } from './core/errors.js';
export type { PullOptions } from './hub/pull.js';
export type { EmbeddingHead, Manifest, Pooling, Task } from './model/artifact.js';
export type { ImageOverrides, ImagePreprocessing } from './model/image.js';
export type { TruncationDirection } from './model/tokenizer.js';
export type { InferOptions, Layout, ModelInput, TextPair } from './runtime/task-model.js';
export type { TextTokens } from './runtime/text-model.js';
export type { ServerOptions } from './server/server.js';
export type { Embedding, TextEmbedder } from './tasks/feature-extraction/model.js';
export type { ImageClassifier, ImagePrediction } from './tasks/image-classification/model.js';
export type { Answer, Answers, QuestionAnswerer, QuestionRequest } from './tasks/question-answering/model.js';
export type { LoadedModel } from './tasks/registry.js';
export type { Prediction, TextClassifier } from './tasks/text-classification/model.js';
export type { Ranked, Relevance, TextRanker } from './tasks/text-ranking/model.js';
export type {
  AggregationStrategy,
  Entity,
  GroupEntity,
  TokenEntity,
} from './tasks/token-classification/aggregate.js';
export type { TokenAnswer, TokenClassifier, TokenOptions } from './tasks/token-classification/model.js';
export type {
  ZeroShotAnswer,
  ZeroShotClassifier,
  ZeroShotOptions,
  ZeroShotRequest,
} from './tasks/zero-shot-classification/model.js';
