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
  /** Present when every row has a label. */
  accuracy?: { reference: number; compiled: number; drop: number };
  /** Fraction of rows where both predict the same label. */
  agreement: number;
  maxAbsLogitDelta: number;
  meanAbsLogitDelta: number;
  /** Rows whose predicted label differs (first 10). */
  flipped: Array<{ line: number; text: string; reference: string; compiled: string; gold?: string }>;
  flippedCount: number;
  limits: { maxAccuracyDrop: number; minAgreement: number };
}
