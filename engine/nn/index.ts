// Modules, layers and initialisers (torch.nn's shape: `init.truncNormal_(layer.weight, {std: .02})`).
export { Module, parameter, isParameter, type StateDict, type LoadResult } from './module.ts';
export {
  copy_,
  planFlat,
  packFlat,
  flatHomeOf,
  maxSlabElements,
  FLAT_CHUNK,
  type FlatPlan,
  type FlatSlot,
} from '../flat.ts';
export {
  Linear,
  LayerNorm,
  Embedding,
  Dropout,
  Identity,
  ModuleList,
  Sequential,
  type Layer,
  type LinearOptions,
  type LayerNormOptions,
} from './layers.ts';
export * as init from './init.ts';
export * from './vision.ts';
export * from './attention.ts';
export * from './mlp.ts';
export { checkpoint, type CheckpointOptions } from './checkpoint.ts';
