// Compute pipelines: cached by kernel name + template parameters, compiled two ways.
//
// WebGPU compiles a pipeline either synchronously (createComputePipeline: the call returns at
// once, but the first dispatch that uses it waits for the driver's compile, blocking the page's
// main thread) or asynchronously (createComputePipelineAsync: a promise, compiled off the main
// thread). Ops dispatch synchronously (an op returns its output tensor at once), so a dispatch
// cannot await a compile. The two meet in warm-up: `Device.precompile` runs a model's forward
// once in a dry mode where dispatches only note which kernels they need (nothing is recorded or
// submitted), then compiles the missing ones with createComputePipelineAsync, all in parallel.
// The real forward then finds every pipeline cached; a kernel warm-up did not foresee still
// compiles on the synchronous path when it is first dispatched (the fallback, counted in
// `compiles.sync`, so a test can assert that a warmed-up forward compiles nothing).
// Reference: WebGPU spec, GPUDevice.createComputePipelineAsync; tfjs's backends offer the same
// idea (run a model once only to compile its programs in parallel, then wait for the compiles).
import { fillTemplate } from './shader.ts';
import { checkUniforms, type UniformWord } from './uniforms.ts';

/** What identifies a kernel: its shader and template parameters (the op only labels it). */
export interface KernelSpec {
  op: string;
  shader: string;
  params?: Record<string, string | number>;
  words?: readonly UniformWord[];
  names?: readonly (string | undefined)[];
}

export function kernelKey(shader: string, params?: Record<string, string | number>): string {
  return params
    ? `${shader}\u0000${Object.keys(params)
        .sort()
        .map((k) => `${k}=${params[k]}`)
        .join('\u0000')}`
    : shader;
}

export class PipelineCache {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  /** Pipelines compiled so far on each path. */
  readonly compiles = { sync: 0, async: 0 };

  constructor(
    private readonly gpu: GPUDevice,
    private readonly shaders: Record<string, string>,
    private readonly log: (line: string) => void,
    private readonly debug: () => number,
  ) {}

  get size(): number {
    return this.pipelines.size;
  }

  has(key: string): boolean {
    return this.pipelines.has(key);
  }

  /** The WGSL of a kernel after template filling. */
  source(shader: string, params?: Record<string, string | number>): string {
    const text = this.shaders[shader];
    if (text === undefined) throw new Error(`no shader named '${shader}.wgsl' was given to the engine`);
    return params ? fillTemplate(text, params, shader) : text;
  }

  /** Fills the template and checks the uniform layout (the part of a compile that can fail in JS). */
  private prepare(k: KernelSpec): GPUShaderModule {
    const code = this.source(k.shader, k.params);
    if (k.words) checkUniforms(k.op, k.shader, code, k.words, k.names);
    if (this.debug() >= 2) this.log(`[wgsl] ${k.op} (${k.shader}.wgsl)\n${code}`);
    return this.gpu.createShaderModule({ label: `${k.op}:${k.shader}`, code });
  }

  /** The cached pipeline, or a synchronous compile (the fallback when warm-up did not foresee it). */
  get(key: string, k: KernelSpec): GPUComputePipeline {
    let p = this.pipelines.get(key);
    if (!p) {
      const module = this.prepare(k);
      p = this.gpu.createComputePipeline({
        label: `${k.op}:${k.shader}`,
        layout: 'auto',
        compute: { module, entryPoint: 'main' },
      });
      this.compiles.sync++;
      this.pipelines.set(key, p);
    }
    return p;
  }

  /** Compiles the kernels not cached yet with createComputePipelineAsync, in parallel. */
  async compile(kernels: Iterable<KernelSpec>, wait: <T>(p: Promise<T>) => Promise<T>): Promise<number> {
    const todo = new Map<string, KernelSpec>();
    for (const k of kernels) {
      const key = kernelKey(k.shader, k.params);
      if (!this.pipelines.has(key)) todo.set(key, k);
    }
    const made = await wait(
      Promise.all(
        [...todo].map(async ([key, k]) => {
          const label = `${k.op}:${k.shader}`;
          // A WGSL error surfaces in this scope (with the source line), not as an uncaptured error.
          this.gpu.pushErrorScope('validation');
          const module = this.prepare(k);
          const scope = this.gpu.popErrorScope();
          try {
            const p = await this.gpu.createComputePipelineAsync({
              label,
              layout: 'auto',
              compute: { module, entryPoint: 'main' },
            });
            return [key, p] as const;
          } catch (e) {
            const why = (await scope)?.message ?? (e as Error).message;
            throw new Error(`${k.op} (${k.shader}.wgsl): pipeline compile failed: ${why}`);
          }
        }),
      ),
    );
    for (const [key, p] of made) if (!this.pipelines.has(key)) this.pipelines.set(key, p);
    this.compiles.async += made.length;
    return made.length;
  }
}
