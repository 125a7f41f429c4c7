// Browser runtime: acquires a WebGPU device (core feature level, or compatibility where that is
// all the browser offers), requesting the adapter's own limits, and hands the engine the same
// shader text Node uses. The shader record comes from the `virtual:shaders` module, which the
// esbuild bundle (runtime-browser/build.ts) fills from ../shaders/*.wgsl at build time.
import { Device, setDevice, deviceDescriptor, isCpuAdapter, describeAdapter, type Debug } from '../engine/index.ts';
// @ts-expect-error: resolved by the bundler plugin in build.ts
import shaders from 'virtual:shaders';

export interface BrowserInitOptions { debug?: Debug; featureLevel?: 'core' | 'compatibility' }

export class NoWebGPUError extends Error {}

const NO_WEBGPU = `This browser does not expose WebGPU (navigator.gpu is missing).
Try a recent Chrome, Edge or Firefox Nightly over https:// or http://localhost (WebGPU needs a
secure context). On Linux Chromium, start it with --enable-unsafe-webgpu (and, without a GPU,
--use-angle=vulkan --use-webgpu-adapter=opengles for the faster compatibility adapter).`;

const NO_ADAPTER = `WebGPU is present but no adapter was offered. The GPU may be blocklisted or
WebGPU disabled: check chrome://gpu, enable chrome://flags/#enable-unsafe-webgpu, or update the
graphics driver.`;

let current: Device | null = null;

export async function initBrowser(opts: BrowserInitOptions = {}): Promise<{ device: Device; featureLevel: string; adapterName: string }> {
  const gpu = (globalThis as unknown as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) throw new NoWebGPUError(NO_WEBGPU);
  let adapter: GPUAdapter | null = null;
  let featureLevel = opts.featureLevel ?? 'core';
  if (featureLevel === 'core') adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    featureLevel = 'compatibility';
    adapter = await gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions);
  }
  if (!adapter) throw new NoWebGPUError(NO_ADAPTER);
  // Compatibility adapters start with low default limits: deviceDescriptor asks for the adapter's own.
  const gpuDevice = await adapter.requestDevice(deviceDescriptor(adapter));
  const info = adapter.info;
  current = new Device({
    device: gpuDevice,
    shaders: shaders as Record<string, string>,
    isCpuAdapter: isCpuAdapter(info),
    debug: opts.debug ?? 0,
  });
  const adapterName = describeAdapter(info);
  current.adapterName = adapterName;
  setDevice(current);
  return { device: current, featureLevel, adapterName };
}
