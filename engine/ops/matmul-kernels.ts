// Matmul kernels, chosen per adapter. The naive kernel (one invocation per output) is the
// reference every other kernel is tested against (test/engine/matmul-kernels.test.ts).
// - blocked: register blocking, 16x16 outputs per invocation, no shared memory or barriers, for
//   CPU Vulkan drivers, where loads (done lane by lane) and barriers are what cost and arithmetic
//   per load is the lever (PLATFORM.md). Tried on lavapipe at 512^3, interleaved runs, GFLOP/s
//   per CPU-second on a loaded machine: 16x16 per invocation ~10-12, 8x16 ~7-11, 8x8 ~7-9,
//   4x4 ~4, naive ~1; workgroup shape (2x4 to 8x4) mattered little; vec4 loads for the
//   contiguous case were not faster, nor were rows shared by a whole workgroup.
// - tiled: 64x64 shared-memory tiles, 16x16 workgroups, 4x4 per invocation, K-step 16: the
//   classic GPU scheme (Volkov & Demmel, "Benchmarking GPUs to tune dense linear algebra", 2008;
//   tfjs-backend-webgpu's matmul_packed).
// Each kernel reads its operands and writes its output through offsets and strides, scales the
// product by alpha, and stores through a fused epilogue (engine/ops/epilogue.ts: how to add one).
// Benchmarks: `npm run bench matmul`.
import { Tensor, device } from '../tensor.ts';
import { Params, launch } from './kernel.ts';
import { knobs, setFlag } from '../flags.ts';
import { measuredChoice, sizeBucket } from '../measure.ts';
import { epilogueParams, type Epilogue } from './epilogue.ts';
import { elementParams } from './autocast.ts';

export interface MatmulArgs {
  a: Tensor;
  b: Tensor;
  out: Tensor;
  batch: number[];
  m: number;
  n: number;
  k: number;
  /** Per-batch-dim element strides of a and b (0 where broadcast). */
  bsa: number[];
  bsb: number[];
  sam: number;
  sak: number;
  sbk: number;
  sbn: number;
  /** Element offsets of a's and b's first elements in their buffers (default 0). */
  offa?: number;
  offb?: number;
  /**
   * Where C[batch, row, col] is stored: offc + batch strides bsc + row * scm + col * scn. Default:
   * `out` contiguous [...batch, m, n]. A strided output writes heads straight into token-major
   * tensors or into one part of a packed gradient (attention-kv.ts); the caller owns the layout.
   */
  offc?: number;
  bsc?: number[];
  scm?: number;
  scn?: number;
  /** Multiplies the product before the epilogue (an attention scale); default 1. */
  alpha?: number;
  /** Work fused into the output store (a bias add); none by default. */
  epilogue?: Epilogue;
}

export const MATMUL_KERNELS = ['naive', 'blocked', 'tiled'] as const;
export type MatmulKernelName = (typeof MATMUL_KERNELS)[number];

// Register block of matmul-blocked.wgsl: TM rows x 4*TN4 columns per invocation, WGX x WGY
// invocations per workgroup.
const BLOCKED = { TM: 16, TN4: 4, WGX: 4, WGY: 4 };
const TILE = 64;
const SHADER: Record<MatmulKernelName, string> = {
  naive: 'matmul-naive',
  blocked: 'matmul-blocked',
  tiled: 'matmul-tiled',
};

/** Forces one kernel (the `matmul` knob, engine/flags.ts); null restores the per-adapter choice. */
export function useMatmulKernel(name: MatmulKernelName | null): void {
  if (name !== null && !MATMUL_KERNELS.includes(name)) {
    throw new Error(`useMatmulKernel: unknown kernel '${name}', expected one of ${MATMUL_KERNELS.join(', ')}`);
  }
  setFlag('matmul', name ?? 'auto');
}

/** The forced kernel if any, else register blocking on CPU drivers and shared-memory tiles on GPUs. */
export function chooseMatmulKernel(): MatmulKernelName {
  if (knobs.matmul !== 'auto' && knobs.matmul !== 'auto-measure') return knobs.matmul;
  return device().isCpuAdapter ? 'blocked' : 'tiled';
}

function uniforms(x: MatmulArgs, nb: number): Params {
  const pad = (v: number[], fill: number) => [...Array(4 - v.length).fill(fill), ...v];
  const { m, n, k, sam, sak, sbk, sbn } = x;
  // The contiguous output's batch strides: m * n times the product of the later batch dims.
  const bsc = x.bsc ?? x.batch.map((_, i) => x.batch.slice(i + 1).reduce((p, d) => p * d, m * n));
  return new Params()
    .vec4('bshape', pad(x.batch, 1))
    .vec4('bsa', pad(x.bsa, 0))
    .vec4('bsb', pad(x.bsb, 0))
    .vec4('bsc', pad(bsc, 0))
    .u32({ batch: nb, m, n, k, sam, sak, sbk, sbn })
    .u32({ offa: x.offa ?? 0, offb: x.offb ?? 0, offc: x.offc ?? 0, scm: x.scm ?? n, scn: x.scn ?? 1 })
    .f32({ alpha: x.alpha ?? 1 });
}

export function matmulKernel(x: MatmulArgs): void {
  launchMatmul(x, knobs.matmul === 'auto-measure' ? measuredMatmul(x) : chooseMatmulKernel());
}

/** `auto-measure`: every kernel that fits times itself once per shape class (engine/measure.ts). */
function measuredMatmul(x: MatmulArgs): MatmulKernelName {
  const nb = x.batch.reduce((p, d) => p * d, 1);
  const max = device().limits.maxComputeWorkgroupsPerDimension;
  const fits = MATMUL_KERNELS.filter((k) => grid(x, nb, k).workgroups.every((w) => w <= max));
  const cls = [nb, x.m, x.n, x.k].map(sizeBucket).join('x');
  return measuredChoice('matmul', cls, fits, chooseMatmulKernel(), (k) => {
    const scratch = Tensor.empty(x.out.shape, x.out.dtype, 'matmul-measure');
    launchMatmul({ ...x, out: scratch }, k);
    scratch.dispose();
  });
}

function grid(
  x: MatmulArgs,
  nb: number,
  name: MatmulKernelName,
): { workgroups: [number, number, number]; params: Record<string, string | number> } {
  let workgroups: [number, number, number];
  let params: Record<string, string | number> = {};
  switch (name) {
    case 'naive':
      workgroups = [Math.ceil(x.n / 8), Math.ceil(x.m / 8), nb];
      break;
    case 'blocked':
      params = BLOCKED;
      workgroups = [Math.ceil(x.n / (4 * BLOCKED.TN4 * BLOCKED.WGX)), Math.ceil(x.m / (BLOCKED.TM * BLOCKED.WGY)), nb];
      break;
    case 'tiled':
      workgroups = [Math.ceil(x.n / TILE), Math.ceil(x.m / TILE), nb];
      break;
  }
  return { workgroups, params };
}

function launchMatmul(x: MatmulArgs, name: MatmulKernelName): void {
  const nb = x.batch.reduce((p, d) => p * d, 1);
  const { workgroups, params } = grid(x, nb, name);
  const max = device().limits.maxComputeWorkgroupsPerDimension;
  if (workgroups.some((w) => w > max)) {
    throw new Error(
      `matmul: batch ${nb}, m ${x.m}, n ${x.n} needs ${workgroups.join('x')} workgroups of the ${name} ` +
        `kernel; this adapter allows ${max} per dimension`,
    );
  }
  launch({
    op: 'matmul',
    shader: SHADER[name],
    params: { ...params, ...elementParams(x.a.dtype), ...epilogueParams(x.epilogue) },
    inputs: [x.a, x.b, ...(x.epilogue?.inputs ?? [])],
    outputs: [x.out],
    uniforms: uniforms(x, nb),
    workgroups,
  });
}
