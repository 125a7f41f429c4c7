// Optimizers, schedules, gradient clipping and weight averaging.
export {
  Optimizer,
  paramGroupsWeightDecay,
  layerDecayGroups,
  vitLayerId,
  skipsWeightDecay,
  type OptimizerOptions,
  type ParamGroup,
  type ParamGroupSpec,
  type OptimizerState,
  type HyperRow,
  type LayerDecayOptions,
} from './optimizer.ts';
export { SGD, type SGDOptions } from './sgd.ts';
export { Adam, AdamW, type AdamOptions } from './adam.ts';
export { AdaBelief, type AdaBeliefOptions } from './adabelief.ts';
export { clipGradNorm, clipGradValue, gradNorm } from './clip.ts';
export { ModelEma } from './ema.ts';
export {
  cosineLr,
  polyWarmupFactor,
  stepFactor,
  lambdaFactor,
  type CosineOptions,
  type PolyWarmupOptions,
} from './schedule.ts';
export { GradScaler, type GradScalerOptions, type GradScalerState } from './grad-scaler.ts';
