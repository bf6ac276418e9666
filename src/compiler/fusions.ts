/**
 * What ONNX Runtime's optimizer fused, counted from the optimized graph's operators. Fused
 * kernels are where the speed of a transformer on CPU comes from, so compile reports them.
 */
export interface FusionCounts {
  /** Attention blocks fused into one kernel (com.microsoft Attention / MultiHeadAttention). */
  attention: number;
  /** Layer norms as one kernel (LayerNormalization, SkipLayerNormalization, …). */
  layerNorm: number;
  /** GELU activations as one kernel (Gelu, BiasGelu, FastGelu, …). */
  gelu: number;
  /** MatMul merged with a scale, transpose or bias (FusedMatMul, FusedGemm, Gemm). */
  matmul: number;
}

const GROUPS: Record<keyof FusionCounts, readonly string[]> = {
  attention: ['com.microsoft:Attention', 'com.microsoft:MultiHeadAttention', 'Attention', 'com.microsoft:QAttention'],
  layerNorm: [
    'LayerNormalization',
    'com.microsoft:SkipLayerNormalization',
    'com.microsoft:SimplifiedLayerNormalization',
    'com.microsoft:SkipSimplifiedLayerNormalization',
    'com.microsoft:EmbedLayerNormalization',
  ],
  gelu: ['Gelu', 'com.microsoft:Gelu', 'com.microsoft:BiasGelu', 'com.microsoft:FastGelu', 'com.microsoft:QuickGelu'],
  matmul: ['com.microsoft:FusedMatMul', 'com.microsoft:FusedGemm', 'Gemm'],
};

export function fusionCounts(optimizedOps: Record<string, number>): FusionCounts {
  const count = (names: readonly string[]): number => names.reduce((n, name) => n + (optimizedOps[name] ?? 0), 0);
  return {
    attention: count(GROUPS.attention),
    layerNorm: count(GROUPS.layerNorm),
    gelu: count(GROUPS.gelu),
    matmul: count(GROUPS.matmul),
  };
}
