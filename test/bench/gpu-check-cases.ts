// The correctness half of `npm run gpu-check`: every kernel path the engine can select (each
// matmul and conv2d kernel forced in turn, linear's fused bias epilogue with each matmul kernel,
// the fused SwiGLU, fused and unfused attention training, the layout fast paths on and off, both
// layer-norm and softmax kernels) runs the PyTorch golden cases (test/golden/fixtures, float64 references of
// outputs and input gradients); ops with no fixture of their own (kvAttention, the channels-last
// depthwise conv) are checked against the composition they replace, itself golden-checked. It
// reports pass/fail with the worst error instead of stopping at the first failure, so one run on
// a borrowed GPU shows everything that is wrong.
import { readFixture } from '../golden/read-fixture.ts';
import {
  Tensor,
  tensor,
  tidy,
  backward,
  requiresGrad,
  sum,
  mul,
  add,
  sub,
  div,
  matmul,
  linear,
  swiglu,
  transpose,
  softmax,
  logSoftmax,
  layerNorm,
  useMatmulKernel,
  MATMUL_KERNELS,
  setAttentionTraining,
  scaledDotProductAttention,
  cat,
  split,
  chunk,
  repeat,
  gelu,
  neg,
  exp,
  randn,
  manualSeed,
  kvAttention,
  kvAttentionReference,
  depthwiseConvTokens,
  depthwiseConvTokensReference,
} from '../../engine/index.ts';
import { useLayerNormKernel } from '../../engine/ops/layer-norm.ts';
import { useSoftmaxKernel } from '../../engine/ops/softmax.ts';
import { conv2d, useConvKernel, type IntPair } from '../../engine/ops/conv.ts';
import { CONV_KERNELS } from '../../engine/ops/conv-kernels.ts';
import { setLayoutFastPaths } from '../../engine/ops/layouts.ts';

interface Encoded {
  shape: number[];
  dtype: 'f32' | 'i32';
  data: number[];
}
interface Case {
  name: string;
  args: Record<string, unknown>;
  inputs: Encoded[];
  outputs: Encoded[];
  cotangents?: (Encoded | null)[];
  grads?: (Encoded | null)[];
}
type Fn = (xs: Tensor[], a: Record<string, unknown>) => Tensor | Tensor[];

export interface CheckRow {
  path: string;
  case: string;
  ok: boolean;
  worst: number;
  note: string;
}

const load = (family: string): Case[] => readFixture<{ cases: Case[] }>(family).cases; // safetensors + JSON index

/** Worst |a - b| / (atol + rtol |b|) over all elements (<= 1 passes; NaN where both are NaN is fine). */
function worstRatio(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number): number {
  if (a.length !== b.length) return Infinity;
  let w = 0;
  for (let i = 0; i < b.length; i++) {
    if (Number.isNaN(a[i]) && Number.isNaN(b[i])) continue;
    const r = Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i]));
    w = Number.isNaN(r) ? Infinity : Math.max(w, r);
  }
  return w;
}

/** One golden case: outputs, then gradients of sum(output * cotangent) (as test/helpers.ts). */
async function runCase(c: Case, fn: Fn, atol: number, rtol: number): Promise<{ worst: number; note: string }> {
  const inputs = c.inputs.map((e) => {
    const t = tensor(e.data, e.shape, e.dtype);
    return e.dtype === 'f32' && c.grads ? requiresGrad(t) : t;
  });
  try {
    const outs = tidy(() => {
      const r = fn(inputs, c.args);
      const list = Array.isArray(r) ? r : [r];
      let total: Tensor | null = null;
      list.forEach((o, i) => {
        const cot = c.cotangents?.[i];
        if (!cot || !o.requiresGrad) return;
        const term = sum(mul(o, tensor(cot.data, cot.shape)));
        total = total ? add(total, term) : term;
      });
      if (total && c.grads) backward(total);
      return list;
    });
    let worst = 0,
      note = '';
    for (let i = 0; i < outs.length; i++) {
      const w = worstRatio(await outs[i].data(), c.outputs[i].data, atol, rtol);
      if (w > worst) {
        worst = w;
        note = `output ${i}`;
      }
    }
    for (let i = 0; i < inputs.length && c.grads; i++) {
      const g = c.grads[i];
      if (!g) continue;
      const w = inputs[i].grad ? worstRatio(await inputs[i].grad!.data(), g.data, atol * 10, rtol * 10) : Infinity;
      if (w > worst) {
        worst = w;
        note = `grad ${i}`;
      }
    }
    for (const t of outs) t.dispose();
    return { worst, note };
  } catch (e) {
    return { worst: Infinity, note: (e as Error).message.slice(0, 120) };
  } finally {
    for (const t of inputs) {
      t.grad?.dispose();
      t.dispose();
    }
  }
}

const pair = (v: unknown) => v as IntPair | undefined;
const CORE: Record<string, Fn> = {
  add_broadcast: ([a, b]) => add(a, b),
  mul_broadcast: ([a, b]) => mul(a, b),
  div: ([a, b]) => div(a, b),
  matmul_batched_broadcast: ([a, b]) => matmul(a, b),
  matmul_vec: ([a, b]) => matmul(a, b),
  matmul_transA: ([a, b]) => matmul(a, b, { transA: true }),
  matmul_transB: ([a, b]) => matmul(a, transpose(b, -1, -2)),
  matmul_transA_transB: ([a, b]) => matmul(a, b, { transA: true, transB: true }),
};
const MOVEMENT: Record<string, Fn> = {
  cat_dim0: (xs) => cat(xs, 0),
  cat_dim1: (xs) => cat(xs, 1),
  cat_dimneg1: (xs) => cat(xs, -1),
  split_size: ([x]) => split(x, 10, 0),
  split_sections: ([x]) => split(x, [1, 7, 57], -1),
  chunk_dim0: ([x]) => chunk(x, 3, 0),
  chunk_dim1: ([x]) => chunk(x, 4, 1),
  repeat_lead: ([x], a) => repeat(x, a.reps as number[]),
  repeat_2d: ([x], a) => repeat(x, a.reps as number[]),
};
const ELEMENTWISE: Record<string, Fn> = {
  neg: ([x]) => neg(x),
  exp: ([x]) => exp(x),
  gelu: ([x]) => gelu(x),
  sub_broadcast: ([a, b]) => sub(a, b),
};
const NN: Record<string, Fn> = {
  softmax: ([x], a) => softmax(x, a.dim as number),
  log_softmax: ([x], a) => logSoftmax(x, a.dim as number),
  layer_norm: ([x, ...wb], a) => {
    const affine = a.affine as string;
    const w = affine === 'both' || affine === 'weight' ? wb[0] : undefined;
    const b = affine === 'both' ? wb[1] : affine === 'bias' ? wb[0] : undefined;
    return layerNorm(x, a.normalized_shape as number[], w, b, a.eps as number);
  },
};
const conv: Fn = ([x, w, b], a) =>
  conv2d(x, w, b ?? null, {
    stride: pair(a.stride),
    padding: pair(a.padding),
    dilation: pair(a.dilation),
    groups: a.groups as number | undefined,
  });
const attention: Fn = ([q, k, v], a) => {
  const m = a.mask as { shape: number[]; data: number[] } | undefined;
  const mask = m ? tensor(m.data, m.shape) : null;
  return scaledDotProductAttention(q, k, v, { mask, scale: a.scale as number | undefined });
};

/**
 * An op against the composition it replaces on seeded inputs of `shapes`: outputs and the
 * gradients of sum(output * r) for a seeded r. Returns the worst error ratio and where it was.
 */
async function sameAs(
  shapes: number[][],
  fn: (xs: Tensor[]) => Tensor,
  ref: (xs: Tensor[]) => Tensor,
  atol: number,
  rtol: number,
): Promise<{ worst: number; note: string }> {
  const run = async (f: (xs: Tensor[]) => Tensor) => {
    manualSeed(7);
    const xs = shapes.map((s) => requiresGrad(randn(s)));
    const y = tidy(() => {
      const y = f(xs);
      backward(sum(mul(y, randn(y.shape))));
      return y;
    });
    const data = [await y.data(), ...(await Promise.all(xs.map((x) => x.grad!.data())))];
    [y, ...xs.map((x) => x.grad!), ...xs].forEach((t) => t.dispose());
    return data;
  };
  try {
    const [got, want] = [await run(fn), await run(ref)];
    let worst = 0,
      note = '';
    got.forEach((g, i) => {
      const w = worstRatio(g, want[i], atol, rtol);
      if (w > worst) [worst, note] = [w, i === 0 ? 'output' : `grad ${i - 1}`];
    });
    return { worst, note };
  } catch (e) {
    return { worst: Infinity, note: (e as Error).message.slice(0, 120) };
  }
}

/** Runs every path; `log` gets a line per path as it finishes. */
export async function kernelChecks(log: (line: string) => void = () => {}): Promise<CheckRow[]> {
  const rows: CheckRow[] = [];
  const suite = async (path: string, cases: Case[], fn: (c: Case) => Fn, atol = 2e-5, rtol = 1e-4) => {
    let fails = 0;
    for (const c of cases) {
      const r = await runCase(c, fn(c), atol, rtol);
      const ok = r.worst <= 1;
      if (!ok) fails++;
      rows.push({ path, case: c.name, ok, worst: r.worst, note: ok ? '' : r.note });
    }
    log(`${path}: ${cases.length - fails}/${cases.length} pass`);
  };
  const core = load('core');
  const matmuls = core.filter((c) => c.name.startsWith('matmul'));
  const linears = load('linear');
  try {
    for (const k of MATMUL_KERNELS) {
      useMatmulKernel(k);
      await suite(`matmul ${k}`, matmuls, (c) => CORE[c.name]);
      await suite(
        `linear (fused bias epilogue) ${k}`,
        linears,
        () =>
          ([x, w, b]) =>
            linear(x, w, b),
      );
    }
  } finally {
    useMatmulKernel(null);
  }
  const convs = load('vision').filter((c) => c.name.startsWith('conv2d'));
  try {
    for (const k of CONV_KERNELS) {
      useConvKernel(k);
      await suite(`conv2d ${k}`, convs, () => conv, 2e-5, 1e-4);
    }
  } finally {
    useConvKernel(null);
  }
  const attn = load('attention_norm').filter((c) => c.name.startsWith('attn_'));
  try {
    for (const mode of ['fused', 'unfused'] as const) {
      setAttentionTraining(mode);
      await suite(`attention training ${mode}`, attn, () => attention);
    }
  } finally {
    setAttentionTraining('auto');
  }
  const nn = load('nn_ops').filter((c) =>
    ['softmax', 'log_softmax', 'layer_norm'].some((p) => c.name.startsWith(p + '/')),
  );
  await suite('softmax, log_softmax, layer_norm', nn, (c) => NN[c.name.split('/')[0]]);
  try {
    useLayerNormKernel('rows'); // rows not a multiple of 4 long keep the workgroup kernel
    useSoftmaxKernel('rows');
    await suite('softmax, log_softmax, layer_norm, one invocation per row', nn, (c) => NN[c.name.split('/')[0]]);
  } finally {
    useLayerNormKernel(null);
    useSoftmaxKernel(null);
  }
  // [name, shapes, op, reference]: B 2, PVTv2-like sizes (spatial reduction 17 -> 5 tokens).
  const composed: [string, number[][], (xs: Tensor[]) => Tensor, (xs: Tensor[]) => Tensor][] = [
    [
      'kvAttention',
      [
        [2, 17, 32],
        [2, 5, 64],
      ],
      ([q, kv]) => kvAttention(q, kv, { heads: 2 }),
      ([q, kv]) => kvAttentionReference(q, kv, { heads: 2 }),
    ],
    [
      'depthwiseConvTokens',
      [[2, 35, 16], [16, 1, 3, 3], [16]],
      ([x, w, b]) => depthwiseConvTokens(x, w, b, 5, 7, 1),
      ([x, w, b]) => depthwiseConvTokensReference(x, w, b, 5, 7, 1),
    ],
  ];
  try {
    for (const mode of ['fused', 'unfused'] as const) {
      setAttentionTraining(mode);
      let fails = 0;
      const path = `token-major ops vs their compositions, attention ${mode}`;
      for (const [name, shapes, fn, ref] of composed) {
        const r = await sameAs(shapes, fn, ref, 3e-5, 1e-3);
        if (!(r.worst <= 1)) fails++;
        rows.push({ path, case: name, ok: r.worst <= 1, worst: r.worst, note: r.worst <= 1 ? '' : r.note });
      }
      log(`${path}: ${composed.length - fails}/${composed.length} pass`);
    }
  } finally {
    setAttentionTraining('auto');
  }
  await suite('swiglu (fused forward and backward)', load('swiglu'), (c) =>
    c.name.startsWith('packed/') ? ([x]) => swiglu(x) : ([a, g]) => swiglu(a, g),
  );
  const glue = [
    ...core
      .filter((c) => ['add_broadcast', 'mul_broadcast', 'div'].includes(c.name))
      .map((c) => ({ c, fn: CORE[c.name] })),
    ...load('movement')
      .filter((c) => MOVEMENT[c.name])
      .map((c) => ({ c, fn: MOVEMENT[c.name] })),
    ...load('elementwise')
      .filter((c) => ELEMENTWISE[c.name])
      .map((c) => ({ c, fn: ELEMENTWISE[c.name] })),
  ];
  const byCase = new Map(glue.map((g) => [g.c, g.fn]));
  try {
    for (const on of [true, false]) {
      setLayoutFastPaths(on);
      await suite(
        `elementwise and copies, layout fast paths ${on ? 'on' : 'off'}`,
        glue.map((g) => g.c),
        (c) => byCase.get(c)!,
      );
    }
  } finally {
    setLayoutFastPaths(true);
  }
  return rows;
}
