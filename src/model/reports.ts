/** Reports compile stores in the manifest; defined here so the artifact format owns its shape. */

/** What int8 compilation quantized (compiler/quantize.ts). */
export interface QuantizeReport {
  /** Names of the MatMul and Gemm nodes now computed by DynamicQuantizeMatMul, in graph order. */
  quantized: string[];
  /** Names of candidate nodes left in fp32 by `keep` or `minElements`, in graph order. */
  kept: string[];
  /** Names of the embedding tables now stored in int8. */
  embeddings: string[];
  /** Bytes of all initializers' data, before and after. */
  weightBytes: { before: number; after: number };
  /** Fraction (0..1) of the float weight elements (initializers of rank ≥ 1) now stored in 8 bits only. */
  quantizedFraction: number;
}

/** The compiled model against its fp32 source on a data file (compiler/verify.ts). */
export interface VerifyReport {
  data: string;
  rows: number;
  /**
   * What agreement counts, for the tasks verified by their answers: `tokens` (token
   * classification: each token's label), `answers` (question answering: the answer's text),
   * `top labels` (zero-shot). Absent: rows, by the logits' top label (classifiers).
   */
  unit?: string;
  /** How many of {@link unit} were compared (the tokens of every row); absent without `unit`. */
  units?: number;
  /** Present when every row has a gold label (or, question answering, gold answers). */
  accuracy?: { reference: number; compiled: number; drop: number };
  /** Fraction of rows (of {@link unit}, when set) where both give the same label (answer). */
  agreement: number;
  /**
   * |Δ| between the source's and the compiled model's outputs, largest and mean: every logit of a
   * classifier; for the tasks with a {@link unit}, the scores of the answers both gave alike (a
   * token's label, an answer, each candidate label), which is what drifts when the logits do.
   */
  maxAbsLogitDelta: number;
  meanAbsLogitDelta: number;
  /** Rows whose predicted label (any token's label, the answer) differs (first 10). */
  flipped: Array<{ line: number; text: string; reference: string; compiled: string; gold?: string }>;
  flippedCount: number;
  limits: { maxAccuracyDrop: number; minAgreement: number };
}

/** Static int8 of an image model, calibrated on sample images (compiler/static-quantize.ts). */
export interface StaticQuantizeReport {
  /** Nodes now computed in int8, by operator type (e.g. `{ Conv: 53, Add: 16, … }`). */
  quantized: Record<string, number>;
  /** Nodes left in fp32, by operator type (Relu folded into a quantized output not included). */
  keptFp32: Record<string, number>;
  /** Relu nodes removed because the uint8 quantization of their input (zero point 0) clamps at 0. */
  foldedRelu: number;
  /** Activation tensors given a QuantizeLinear. */
  activations: number;
  /** Conv and Gemm nodes whose bias was corrected for their weights' rounding. */
  biasCorrected: number;
  calibration: { batches: number; samples: number; method: 'minmax' };
  weights: { bits: 7 | 8; perChannel: boolean };
  /** Bytes of all initializers' data, before and after. */
  weightBytes: { before: number; after: number };
}

/**
 * Work skipped because the outputs read one token (compiler/prune.ts): a classifier's or a
 * CLS-pooled embedder's last layer computes its query, attention output and feed-forward for
 * the first token only.
 */
export type PruneReport =
  | {
      pruned: true;
      /** Nodes now computed on the first token's row. */
      nodes: number;
      /** Of them, the MatMul/Gemm nodes by a weight, in graph order. */
      weightProducts: string[];
      /**
       * Multiply-add FLOPs of the MatMul and Gemm nodes for one sequence of `length` tokens;
       * `uncounted`: products whose shapes the pass could not tell, left out of both counts (so
       * the saving is not shown).
       */
      flops: { length: number; before: number; after: number; uncounted?: number };
    }
  | {
      pruned: false;
      /** Why not: turned off, the outputs read every token, or the graph shows no such layer. */
      reason: string;
    };
