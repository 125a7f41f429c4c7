// layerNorm over the trailing `normalizedShape` dims, as torch.nn.functional.layer_norm
// (Ba, Kiros & Hinton 2016, arXiv:1607.06450): biased variance, eps inside the square root.
// Forward is one fused kernel (layer-norm.wgsl, or layer-norm-rows.wgsl: see rowKernel) that also
// writes mean and rstd per row; the backward reuses them:
//   dx      = rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dy * weight   (layer-norm-backward.wgsl)
//   dweight = sum over rows of dy * xhat,  dbias = sum over rows of dy        (layer-norm-backward-params.wgsl,
//             partial sums over chunks of rows, then `sum` over the chunks)
// The dx formula is the one in PyTorch's layer_norm_backward (aten/src/ATen/native/cpu/layer_norm_kernel.cpp)
// and llm.c's layernorm_backward.
import { Tensor, device, fmt, noGrad } from '../tensor.ts';
import { record } from '../graph.ts';
import { Params, grid, launch } from './kernel.ts';
import { sum } from './reduce.ts';

const CHUNK_ROWS = 64;

export type LayerNormKernel = 'rows' | 'workgroup';
let forced: LayerNormKernel | null = null;

/** Forces the per-row or the per-workgroup kernels (tests compare them); null restores the choice. */
export function useLayerNormKernel(k: LayerNormKernel | null): void {
  forced = k;
}

/**
 * One invocation per row (layer-norm-rows.wgsl, vec4 reads) where rows are a multiple of 4 long
 * and a CPU driver has enough of them to stay busy; otherwise a 64-lane workgroup per row, which
 * GPUs prefer (barriers are cheap there, and a long row needs many lanes). On lavapipe the per-row
 * kernels ran PVTv2's [B N, 64] and EVA-02-Ti's [B N, 192] rows several times faster.
 */
function rowKernel(rows: number, len: number): boolean {
  if (len % 4 !== 0) return false;
  if (forced) return forced === 'rows';
  return device().isCpuAdapter && rows >= 64 && len <= 4096;
}

function check(x: Tensor, normalizedShape: readonly number[], weight?: Tensor, bias?: Tensor): number {
  const k = normalizedShape.length;
  const trail = x.shape.slice(x.ndim - k);
  const what = `input ${fmt(x.shape)} with normalizedShape ${fmt(normalizedShape)}`;
  if (x.dtype !== 'f32') throw new Error(`layerNorm: input ${fmt(x.shape)} has dtype ${x.dtype}, expected f32`);
  if (k === 0 || k > x.ndim || trail.some((d, i) => d !== normalizedShape[i])) {
    throw new Error(`layerNorm: ${what}: the input's trailing dims must equal normalizedShape`);
  }
  for (const [name, t] of [
    ['weight', weight],
    ['bias', bias],
  ] as const) {
    if (!t) continue;
    if (t.dtype !== 'f32') throw new Error(`layerNorm: ${name} ${fmt(t.shape)} has dtype ${t.dtype}, expected f32`);
    if (t.ndim !== k || t.shape.some((d, i) => d !== normalizedShape[i])) {
      throw new Error(
        `layerNorm: ${name} has shape ${fmt(t.shape)}, expected normalizedShape ${fmt(normalizedShape)} (${what})`,
      );
    }
  }
  return normalizedShape.reduce((a, b) => a * b, 1);
}

/** Normalises over the trailing dims, then scales by `weight` and shifts by `bias` (both optional). */
export function layerNorm(
  x: Tensor,
  normalizedShape: readonly number[],
  weight?: Tensor,
  bias?: Tensor,
  eps = 1e-5,
): Tensor {
  const len = check(x, normalizedShape, weight, bias);
  const rows = len === 0 ? 0 : x.size / len;
  const y = Tensor.empty(x.shape, 'f32', 'layerNorm');
  if (y.size === 0) return y;
  const mean = Tensor.empty([rows], 'f32', 'layerNorm');
  const rstd = Tensor.empty([rows], 'f32', 'layerNorm');
  const perRow = rowKernel(rows, len);
  launch({
    op: 'layerNorm',
    shader: perRow ? 'layer-norm-rows' : 'layer-norm',
    // A missing weight or bias binds x as a stand-in the kernel does not read (flags say so).
    inputs: [x, weight ?? x, bias ?? x],
    outputs: [y, mean, rstd],
    uniforms: new Params()
      .u32({
        rows,
        [perRow ? 'len4' : 'len']: perRow ? len / 4 : len,
        hasWeight: weight ? 1 : 0,
        hasBias: bias ? 1 : 0,
      })
      .f32({ eps }),
    workgroups: perRow ? grid(rows) : grid(rows, 1),
  });
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  record(y, 'layerNorm', inputs, (dy) => {
    const dx = x.requiresGrad ? layerNormBackwardInput(x, weight, mean, rstd, dy, rows, len) : null;
    const [dw, db] =
      weight?.requiresGrad || bias?.requiresGrad
        ? layerNormBackwardParams(x, mean, rstd, dy, rows, len, normalizedShape)
        : [null, null];
    return [dx, ...(weight ? [dw] : []), ...(bias ? [db] : [])];
  });
  // Without a graph the statistics have no reader.
  if (!y.requiresGrad) {
    mean.dispose();
    rstd.dispose();
  }
  return y;
}

function layerNormBackwardInput(
  x: Tensor,
  weight: Tensor | undefined,
  mean: Tensor,
  rstd: Tensor,
  dy: Tensor,
  rows: number,
  len: number,
): Tensor {
  const dx = Tensor.empty(x.shape, 'f32', 'layerNorm-backward');
  const perRow = rowKernel(rows, len);
  launch({
    op: 'layerNorm-backward',
    shader: perRow ? 'layer-norm-backward-rows' : 'layer-norm-backward',
    inputs: [x, weight ?? x, mean, rstd, dy],
    outputs: [dx],
    uniforms: new Params().u32({ rows, [perRow ? 'len4' : 'len']: perRow ? len / 4 : len, hasWeight: weight ? 1 : 0 }),
    workgroups: perRow ? grid(rows) : grid(rows, 1),
  });
  return dx;
}

function layerNormBackwardParams(
  x: Tensor,
  mean: Tensor,
  rstd: Tensor,
  dy: Tensor,
  rows: number,
  len: number,
  normalizedShape: readonly number[],
): [Tensor, Tensor] {
  const chunk = Math.max(CHUNK_ROWS, Math.ceil(rows / 65535));
  const chunks = Math.ceil(rows / chunk);
  const op = 'layerNorm-backward-params';
  const pw = Tensor.empty([chunks, len], 'f32', op);
  const pb = Tensor.empty([chunks, len], 'f32', op);
  launch({
    op,
    shader: 'layer-norm-backward-params',
    inputs: [x, mean, rstd, dy],
    outputs: [pw, pb],
    uniforms: new Params().u32({ rows, len, chunk }),
    workgroups: [Math.ceil(len / 64), chunks],
  });
  // [chunks, len] -> normalizedShape
  const finish = (p: Tensor): Tensor => {
    const total = chunks === 1 ? p : noGrad(() => sum(p, 0));
    return total.view(normalizedShape, op);
  };
  return [finish(pw), finish(pb)];
}
