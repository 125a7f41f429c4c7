// The op API, one import for models and recipes.
export * from './math.ts';
export * from './reduce.ts';
export * from './movement.ts';
export * from './matmul.ts';
export * from './creation.ts';
export { broadcastShapes } from './elementwise.ts';
export { useMatmulKernel, chooseMatmulKernel } from './matmul-kernels.ts';
