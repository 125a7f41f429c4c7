// Data: dataset layouts as text (CSV, EndoExtend24 rows, class and label mappings, patient-wise
// folds, split files), named random streams, image types and boxes. Pure TypeScript; the Node
// runtime (runtime-node/datasets.ts, image.ts, synth.ts, synthetic/) reads, paints and writes.
export * from './layouts.ts';
export { Rng, rng, hashSeed, logUniform, weighted } from './rng.ts';
export type { RgbImage, MaskImage } from './images.ts';
export * from './boxes.ts';
export * from './random.ts';
export * from './sampler.ts';
export * from './loader.ts';
export * from './augment.ts';
export * from './mim-mask.ts';
export * from './fov.ts';
export { fovCrop, fillBlueOverlay, type FovResult, type FovOptions as FovCropOptions } from './fov-square.ts';
export * from './report-labels.ts';
