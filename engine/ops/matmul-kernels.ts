// Matmul kernels, chosen per adapter. The naive kernel (one invocation per output) is the
// reference every other kernel is tested against.
import { device, type Tensor } from '../tensor.ts';
import { Params, launch } from './kernel.ts';

export interface MatmulArgs {
  a: Tensor; b: Tensor; out: Tensor;
  batch: number[]; m: number; n: number; k: number;
  /** Per-batch-dim element strides of a and b (0 where broadcast). */
  bsa: number[]; bsb: number[];
  sam: number; sak: number; sbk: number; sbn: number;
}

export type MatmulKernelName = 'naive';

let forced: MatmulKernelName | null = null;

/** Forces one kernel (tests and benchmarks compare them); null restores the per-adapter choice. */
export function useMatmulKernel(name: MatmulKernelName | null): void { forced = name; }

export function chooseMatmulKernel(): MatmulKernelName {
  if (forced) return forced;
  void device();
  return 'naive';
}

function uniforms(x: MatmulArgs): Params {
  const nb = x.batch.reduce((p, d) => p * d, 1);
  const pad = (v: number[], fill: number) => [...Array(4 - v.length).fill(fill), ...v];
  return new Params().vec4(pad(x.batch, 1)).vec4(pad(x.bsa, 0)).vec4(pad(x.bsb, 0))
    .u32(nb, x.m, x.n, x.k, x.sam, x.sak, x.sbk, x.sbn);
}

export function matmulKernel(x: MatmulArgs): void {
  const nb = x.batch.reduce((p, d) => p * d, 1);
  const name = chooseMatmulKernel();
  switch (name) {
    case 'naive':
      launch({ op: 'matmul', shader: 'matmul-naive', inputs: [x.a, x.b], outputs: [x.out], uniforms: uniforms(x),
        workgroups: [Math.ceil(x.n / 8), Math.ceil(x.m / 8), nb] });
  }
}
