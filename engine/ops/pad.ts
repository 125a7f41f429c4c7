// pad: torch.nn.functional.pad with modes 'constant' and 'replicate'. `pads` lists
// (left, right) pairs starting from the last dim: [left, right, top, bottom, front, back, ...];
// negative pads crop. One kernel (pad.wgsl) does both modes. The backward of constant padding is
// a constant pad by the negated pads (crop the border, zero-fill what was cropped); the backward
// of replicate padding sums each border strip into its edge element (pad-replicate-backward.wgsl,
// one thread per input element, fixed summation order: deterministic).
// Reference: PyTorch docs for torch.nn.functional.pad; aten ReplicationPadding (edge gradients).
import { Tensor, fmt } from '../tensor.ts';
import { record } from '../graph.ts';
import { Params, grid, launch, WGSL_TYPE, MAX_RANK, assertDType } from './kernel.ts';

export type PadMode = 'constant' | 'replicate';

/** Per-dim left pad and output shape of `pads` applied to `shape`. */
function padGeometry(
  op: string,
  shape: readonly number[],
  pads: readonly number[],
  mode: PadMode,
): { left: number[]; out: number[] } {
  if (pads.length % 2 !== 0 || pads.length / 2 > shape.length) {
    throw new Error(
      `${op}: pads ${JSON.stringify(pads)} must be (left, right) pairs ` +
        `for at most the ${shape.length} dims of ${fmt(shape)}`,
    );
  }
  if (pads.some((p) => !Number.isInteger(p)))
    throw new Error(`${op}: pads must be integers, got ${JSON.stringify(pads)}`);
  const left = shape.map(() => 0);
  const out = [...shape];
  for (let k = 0; k < pads.length / 2; k++) {
    const d = shape.length - 1 - k;
    left[d] = pads[2 * k];
    out[d] = shape[d] + pads[2 * k] + pads[2 * k + 1];
    if (out[d] < 0) throw new Error(`${op}: pads ${JSON.stringify(pads)} shrink dim ${d} of ${fmt(shape)} below zero`);
    if (mode === 'replicate' && shape[d] === 0 && out[d] > 0) {
      throw new Error(`${op}: replicate mode cannot pad the empty dim ${d} of ${fmt(shape)}`);
    }
  }
  return { left, out };
}

function valueBits(op: string, value: number, dtype: Tensor['dtype']): number {
  const v = new DataView(new ArrayBuffer(4));
  if (dtype === 'f32') v.setFloat32(0, value, true);
  else if (dtype === 'i32') v.setInt32(0, value, true);
  else if (dtype === 'u32') v.setUint32(0, value, true);
  else throw new Error(`${op}: dtype ${dtype} is not supported (expected f32, i32 or u32)`);
  return v.getUint32(0, true);
}

export function pad(x: Tensor, pads: readonly number[], mode: PadMode = 'constant', value = 0): Tensor {
  if (mode !== 'constant' && mode !== 'replicate')
    throw new Error(`pad: mode '${String(mode)}' is not supported (expected 'constant' or 'replicate')`);
  if (x.ndim > MAX_RANK) throw new Error(`pad: rank ${x.ndim} exceeds ${MAX_RANK}`);
  const { left, out: shape } = padGeometry('pad', x.shape, pads, mode);
  const bits = valueBits('pad', value, x.dtype);
  const out = Tensor.empty(shape, x.dtype, 'pad'); // [..., H, W] -> [..., H + top + bottom, W + left + right]
  if (out.size > 0) {
    launch({
      op: 'pad',
      shader: 'pad',
      inputs: [x],
      outputs: [out],
      params: { T: WGSL_TYPE[x.dtype] },
      uniforms: new Params()
        .dims('shape', shape)
        .dims('inShape', x.shape)
        .dims('left', left, true)
        .u32({ n: out.size, rank: x.ndim, mode: mode === 'replicate' ? 1 : 0, bits }),
      workgroups: grid(out.size),
    });
  }
  const p = [...pads];
  return record(out, 'pad', [x], (dy) => [
    mode === 'constant'
      ? pad(
          dy,
          p.map((v) => -v),
          'constant',
          0,
        )
      : padReplicateBackward(dy, x.shape, p),
  ]);
}

/** Gradient of replicate padding: each input element sums the dy of the outputs it fed. */
function padReplicateBackward(dy: Tensor, inShape: readonly number[], pads: number[]): Tensor {
  assertDType('pad-backward', dy, ['f32'], 'gradient');
  const { left } = padGeometry('pad-backward', inShape, pads, 'replicate');
  const dx = Tensor.empty(inShape, 'f32', 'pad-backward'); // [..., H + top + bottom, W + l + r] -> [..., H, W]
  if (dx.size > 0) {
    launch({
      op: 'pad-backward',
      shader: 'pad-replicate-backward',
      inputs: [dy],
      outputs: [dx],
      uniforms: new Params()
        .dims('shape', dy.shape)
        .dims('inShape', inShape)
        .dims('left', left, true)
        .u32({ n: dx.size, rank: inShape.length }),
      workgroups: grid(dx.size),
    });
  }
  // Its own gradient is the replicate pad again (double backward).
  return record(dx, 'pad-backward', [dy], (ddx) => [pad(ddx, pads, 'replicate')]);
}
