// What every runtime asks of an adapter: the device request (limits and optional features) and
// the adapter facts the engine chooses kernels by.
const OPTIONAL_FEATURES: GPUFeatureName[] = ['shader-f16', 'timestamp-query', 'subgroups'];

/**
 * The device request every runtime makes: the adapter's own limits (compatibility adapters and
 * Dawn default to far lower ones) and the optional features the engine can use.
 */
export function deviceDescriptor(adapter: GPUAdapter): GPUDeviceDescriptor {
  const requiredLimits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, number>)[key];
    if (typeof v === 'number') requiredLimits[key] = v;
  }
  return {
    requiredLimits,
    requiredFeatures: OPTIONAL_FEATURES.filter((f) => adapter.features.has(f)),
    label: 'engine',
  };
}

/** CPU drivers (lavapipe, SwiftShader) want barrier-free register-blocked kernels. */
export function isCpuAdapter(info: GPUAdapterInfo): boolean {
  return (
    info.architecture === 'software' ||
    /llvmpipe|lavapipe|swiftshader/i.test(`${info.description} ${info.device} ${info.architecture}`)
  );
}

export function describeAdapter(info: GPUAdapterInfo): string {
  return `${info.vendor} ${info.architecture} ${info.description || info.device}`.trim() || 'WebGPU adapter';
}
