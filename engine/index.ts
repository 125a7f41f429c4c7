// The engine's public API. Pure TypeScript: it never touches fs, fetch, navigator or process;
// a runtime (runtime-node/, runtime-browser/) hands it a GPUDevice and the shader text.
export { Device, type DeviceOptions, type Debug } from './device.ts';
export { Tensor, tidy, noGrad, isGradEnabled, setDevice, device, numel, type DType, type Shape, type TypedArray } from './tensor.ts';
export { backward, requiresGrad, detach, type GradNode } from './autograd.ts';
export * from './ops/index.ts';
