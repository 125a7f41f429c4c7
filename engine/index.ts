// The engine's public API. Pure TypeScript: it never touches fs, fetch, navigator or process;
// a runtime (runtime-node/, runtime-browser/) hands it a GPUDevice and the shader text.
export { Device, type DeviceOptions, type Debug } from './device.ts';
export { deviceDescriptor, isCpuAdapter, describeAdapter } from './adapter.ts';
export {
  Tensor,
  tidy,
  noGrad,
  isGradEnabled,
  setDevice,
  device,
  numel,
  fmt,
  type DType,
  type Shape,
  type TypedArray,
} from './tensor.ts';
export { requiresGrad, detach, type GradNode } from './graph.ts';
export { warmup } from './warmup.ts';
export {
  knobs,
  setFlag,
  setFlags,
  resetFlags,
  flagsFromEnv,
  flagsFromQuery,
  flagsHelp,
  envName,
  KNOBS,
  type KnobName,
  type KnobValues,
} from './flags.ts';
export type { KernelSpec } from './pipelines.ts';
export { backward } from './autograd.ts';
export * from './ops/index.ts';
// A scope, not an op (no kernel of its own): matmul reads it. The loss scaler is in optim/.
export { autocast, autocastActive } from './ops/autocast.ts';
export * as metrics from './metrics/index.ts';
export {
  parseSafetensors,
  serializeSafetensors,
  type SafetensorsDType,
  type SafetensorsData,
  type SafetensorsTensor,
  type SafetensorsInput,
  type ParsedSafetensors,
  type ParseOptions,
} from './io/safetensors.ts';
export { Rng, type RngState } from './data/random.ts';
export {
  shuffle,
  randperm,
  batches,
  inverseFrequencyWeights,
  SequentialSampler,
  RandomSampler,
  WeightedRandomSampler,
  DataOrder,
  type Sampler,
  type DataOrderState,
  type Batch,
} from './data/sampler.ts';
export { MaskingGenerator, blockwiseMasks, type MaskingOptions } from './data/mim-mask.ts';
export { Loader, imagesToChw, masksToChw, type LoaderOptions } from './data/loader.ts';
export {
  augmentBatch,
  composeAffine,
  type Affine2x3,
  sampleParams,
  endoExtendTrainAugment,
  type AugmentConfig,
  type SampleParams,
} from './data/augment.ts';
export * from './nn/index.ts';
export * from './optim/index.ts';
export {
  weightsBytes,
  loadWeights,
  trainStateBytes,
  restoreTrainState,
  nonFiniteTensors,
  WeightsMismatchError,
  type LoadOptions,
  type LoadReport,
  type ShapeMismatch,
  type TrainState,
} from './train/checkpoint.ts';
export * as data from './data/index.ts';
