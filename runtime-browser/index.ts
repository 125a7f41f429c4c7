// Browser runtime: acquires a WebGPU device, requesting the adapter's own limits, and hands the
// engine the same shader text Node uses. The shader record comes from the `virtual:shaders`
// module, which the esbuild bundle (runtime-browser/build.ts) fills from ../shaders/*.wgsl at
// build time.
//
// Which adapter: a browser may offer two (on Linux Chromium without a GPU, SwiftShader at the core
// feature level and ANGLE over the system's Vulkan/GL driver at the compatibility level), and the
// faster one depends on the machine (here ANGLE ran the test workload 2.7-4.8x faster). With featureLevel
// 'auto' both are acquired, a fixed matmul workload (bench.ts) is timed on each, the faster is
// kept and the choice is remembered (in `storage`, keyed by the two adapters' names) so later
// visits acquire only that one. 'core' or 'compatibility' asks for one level directly.
import { Device, setDevice, deviceDescriptor, isCpuAdapter, describeAdapter, type Debug } from '../engine/index.ts';
// @ts-expect-error: resolved by the bundler plugin in build.ts
import shaders from 'virtual:shaders';
import { adapterBench } from './bench.ts';

export type FeatureLevel = 'core' | 'compatibility';
export interface BrowserInitOptions {
  debug?: Debug;
  /** 'auto' (default): the faster of the two levels, measured once; else that level. */
  featureLevel?: FeatureLevel | 'auto';
  /** Where 'auto' remembers its measurement (the page passes localStorage); none: measure each time. */
  storage?: Pick<Storage, 'getItem' | 'setItem'> | null;
}

/** How the adapter was chosen, with the measurement when one was made (ms per workload run). */
export interface AdapterChoice {
  how: 'requested' | 'only one offered' | 'same adapter' | 'measured' | 'remembered';
  measured?: Partial<Record<FeatureLevel, number>>;
  candidates?: Partial<Record<FeatureLevel, string>>;
}

export interface BrowserDevice {
  device: Device;
  featureLevel: FeatureLevel;
  adapterName: string;
  /** A CPU implementation of WebGPU (SwiftShader, lavapipe/llvmpipe): models run, slowly. */
  cpuFallback: boolean;
  /** The adapter's info is blank (Chromium's compatibility adapter over ANGLE says nothing of itself). */
  infoBlank: boolean;
  choice: AdapterChoice;
}

export class NoWebGPUError extends Error {}

const NO_WEBGPU = `This browser does not expose WebGPU (navigator.gpu is missing).
Try a recent Chrome, Edge or Firefox Nightly over https:// or http://localhost (WebGPU needs a
secure context). On Linux Chromium, start it with --enable-unsafe-webgpu (and, without a GPU,
--use-angle=vulkan --use-webgpu-adapter=opengles for the faster compatibility adapter).`;

const NO_ADAPTER = `WebGPU is present but no adapter was offered. The GPU may be blocklisted or
WebGPU disabled: check chrome://gpu, enable chrome://flags/#enable-unsafe-webgpu, or update the
graphics driver.`;

export const CHOICE_KEY = 'webgpu-endo.adapter';

async function requestAdapter(gpu: GPU, level: FeatureLevel): Promise<GPUAdapter | null> {
  return level === 'core'
    ? gpu.requestAdapter({ powerPreference: 'high-performance' })
    : gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions);
}

async function open(adapter: GPUAdapter, debug: Debug): Promise<Device> {
  // Compatibility adapters start with low default limits: deviceDescriptor asks for the adapter's own.
  const gpuDevice = await adapter.requestDevice(deviceDescriptor(adapter));
  const d = new Device({
    device: gpuDevice,
    shaders: shaders as Record<string, string>,
    isCpuAdapter: isCpuAdapter(adapter.info),
    debug,
  });
  d.adapterName = describeAdapter(adapter.info);
  return d;
}

export async function initBrowser(opts: BrowserInitOptions = {}): Promise<BrowserDevice> {
  const gpu = (globalThis as unknown as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) throw new NoWebGPUError(NO_WEBGPU);
  const debug = opts.debug ?? 0,
    want = opts.featureLevel ?? 'auto';
  const done = (
    device: Device,
    adapter: GPUAdapter,
    featureLevel: FeatureLevel,
    choice: AdapterChoice,
  ): BrowserDevice => {
    setDevice(device);
    const i = adapter.info,
      infoBlank = !`${i.vendor}${i.architecture}${i.device}${i.description}`.trim();
    return { device, featureLevel, adapterName: device.adapterName, cpuFallback: isCpuAdapter(i), infoBlank, choice };
  };

  if (want !== 'auto') {
    let level: FeatureLevel = want;
    let adapter = await requestAdapter(gpu, level);
    if (!adapter && level === 'core') {
      level = 'compatibility';
      adapter = await requestAdapter(gpu, level);
    }
    if (!adapter) throw new NoWebGPUError(NO_ADAPTER);
    return done(await open(adapter, debug), adapter, level, { how: 'requested' });
  }

  const core = await requestAdapter(gpu, 'core'),
    compat = await requestAdapter(gpu, 'compatibility');
  if (!core && !compat) throw new NoWebGPUError(NO_ADAPTER);
  if (!core || !compat) {
    const [a, level] = core ? [core, 'core' as const] : [compat!, 'compatibility' as const];
    return done(await open(a, debug), a, level, { how: 'only one offered' });
  }
  const candidates = { core: describeAdapter(core.info), compatibility: describeAdapter(compat.info) };
  if (candidates.core === candidates.compatibility)
    return done(await open(core, debug), core, 'core', { how: 'same adapter', candidates });

  const key = `${CHOICE_KEY}:${candidates.core}|${candidates.compatibility}`;
  const remembered = parseChoice(opts.storage?.getItem(key));
  if (remembered) {
    const a = remembered.level === 'core' ? core : compat;
    return done(await open(a, debug), a, remembered.level, {
      how: 'remembered',
      measured: remembered.measured,
      candidates,
    });
  }
  // Measure both; keep the faster device, destroy the other (its buffers go with it).
  const measured: Partial<Record<FeatureLevel, number>> = {};
  const devices: Partial<Record<FeatureLevel, Device>> = {};
  for (const [level, a] of [
    ['core', core],
    ['compatibility', compat],
  ] as const) {
    const d = await open(a, debug);
    setDevice(d);
    measured[level] = await adapterBench();
    devices[level] = d;
  }
  const level: FeatureLevel = measured.compatibility! < measured.core! ? 'compatibility' : 'core';
  devices[level === 'core' ? 'compatibility' : 'core']!.gpu.destroy();
  opts.storage?.setItem(key, JSON.stringify({ level, measured }));
  return done(devices[level]!, level === 'core' ? core : compat, level, { how: 'measured', measured, candidates });
}

function parseChoice(
  s: string | null | undefined,
): { level: FeatureLevel; measured?: Partial<Record<FeatureLevel, number>> } | null {
  if (!s) return null;
  try {
    const v = JSON.parse(s) as { level?: unknown; measured?: Partial<Record<FeatureLevel, number>> };
    return v.level === 'core' || v.level === 'compatibility' ? { level: v.level, measured: v.measured } : null;
  } catch {
    return null;
  }
}
