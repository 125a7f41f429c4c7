// The vision layers moved to engine/nn/vision.ts; this re-export keeps the models' imports working.
export * from '../engine/nn/vision.ts';
