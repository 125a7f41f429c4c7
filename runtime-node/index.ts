// Node runtime: acquires a WebGPU device through Dawn (npm `webgpu`), reads the shaders from
// ../shaders, and hands both to the engine. It only acquires and does I/O; the engine does the rest.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create, globals } from 'webgpu';
import {
  Device,
  setDevice,
  deviceDescriptor,
  isCpuAdapter,
  describeAdapter,
  setFlags,
  flagsFromEnv,
  type Debug,
} from '../engine/index.ts';
import { installPollingBackoff, gpuWait } from './polling.ts';

export const SHADER_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'shaders');

export function loadShaders(dir = SHADER_DIR): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir)) if (f.endsWith('.wgsl')) out[f.slice(0, -5)] = readFileSync(join(dir, f), 'utf8');
  return out;
}

// The object create() returns must outlive the device: if it is garbage-collected while the
// device lives, Dawn crashes or hangs the process (PLATFORM.md). It lives here for good.
let gpu: GPU | null = null;
let current: Device | null = null;

export interface NodeInitOptions {
  /** Overrides the DEBUG environment variable. */
  debug?: Debug;
  /** Overrides ENGINE_FLUSH_EVERY. */
  flushEvery?: number;
  powerPreference?: GPUPowerPreference;
}

const NO_ADAPTER = `No WebGPU adapter was found.
Dawn needs a Vulkan driver. On a machine without a GPU, install Mesa's lavapipe (Debian 12:
Mesa 25 from bookworm-backports; Debian 12's own Mesa 22 is too old for Dawn):
    apt-get install -y -t bookworm-backports mesa-vulkan-drivers
(.ci/run in this repository does exactly that). With a GPU, install its Vulkan driver.`;

export async function initNode(opts: NodeInitOptions = {}): Promise<Device> {
  if (current) return current;
  // Engine knobs from the environment (DEBUG, ENGINE_*; engine/flags.ts): a bad value or an
  // unknown ENGINE_ variable fails here, naming it, before any device is made.
  setFlags(flagsFromEnv(process.env));
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  Object.assign(globalThis, globals);
  installPollingBackoff();
  gpu ??= create([]);
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) throw new Error(NO_ADAPTER);
  const gpuDevice = await adapter.requestDevice(deviceDescriptor(adapter));
  current = new Device({
    device: gpuDevice,
    shaders: loadShaders(),
    isCpuAdapter: isCpuAdapter(adapter.info),
    debug: opts.debug,
    flushEvery: opts.flushEvery,
    awaitGpu: gpuWait,
    log: (l) => process.stderr.write(l + '\n'),
  });
  current.adapterName = describeAdapter(adapter.info);
  setDevice(current);
  return current;
}

/** Destroys the device so the process can exit. */
export async function shutdown(): Promise<void> {
  if (!current) return;
  await current.sync().catch(() => undefined);
  current.gpu.destroy();
  setDevice(null);
  current = null;
}
export * from './image.ts';
export * from './datasets.ts';
export * from './report-sets.ts';
