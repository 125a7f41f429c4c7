// The op API, one import for models and recipes.
export * from './math.ts';
export * from './reduce.ts';
export * from './movement.ts';
export * from './matmul.ts';
export * from './creation.ts';
export { addInPlace } from './elementwise.ts';
export { swiglu } from './swiglu.ts';
export { broadcastShapes } from '../shape.ts';
export { useMatmulKernel, chooseMatmulKernel, MATMUL_KERNELS, type MatmulKernelName } from './matmul-kernels.ts';
export { softmax, logSoftmax } from './softmax.ts';
export { layerNorm } from './layer-norm.ts';
export {
  crossEntropy,
  validateIndices,
  binaryCrossEntropyWithLogits,
  binaryCrossEntropy,
  mseLoss,
  l1Loss,
  cosineSimilarity,
  type Reduction,
  type CrossEntropyOptions,
  type BceWithLogitsOptions,
  type BceOptions,
} from './losses.ts';
export { argmax, argmin } from './arg-reduce.ts';
export * from './join.ts';
export * from './pad.ts';
export * from './indexing.ts';
export * from './dropout.ts';
export * from './conv.ts';
export * from './pool.ts';
export * from './interpolate.ts';
export { batchNorm, groupNorm, layerNorm2d } from './norm.ts';
export {
  scaledDotProductAttention,
  attentionReference,
  setAttentionTraining,
  attentionTrainingPath,
  type AttentionOptions,
  type AttentionTraining,
} from './attention.ts';
export {
  packedSelfAttention,
  packedAttentionReference,
  type PackedAttentionOptions,
  type PackedRope,
} from './attention-packed.ts';
export { kvAttention, kvAttentionReference, type KvAttentionOptions } from './attention-kv.ts';
export { depthwiseConvTokens, depthwiseConvTokensReference } from './dwconv-tokens.ts';
export { buildRope2d, applyRope, type Rope2dOptions } from './rope.ts';
export { dropPath } from './drop-path.ts';
export { softDiceLoss, structureLoss, multilabelSoftMarginLoss, negCosineLoss } from './seg-losses.ts';
