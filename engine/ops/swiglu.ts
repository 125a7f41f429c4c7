// SwiGLU, silu(a) * g (Shazeer, "GLU Variants Improve Transformer", 2020), as one kernel forward
// and one backward. Composed of silu, mul (and chunk for the packed form) it was, per step of
// EVA-02-Ti, two slice copies + silu + mul forward and two muls + silu_grad + mul + two slice
// backwards + an add backward: memory-bound glue that re-read the [tokens, 2H] activations each
// time. Here the forward reads a and g once, and the backward reads a, g, dy once and writes both
// gradients.
// Two layouts: `swiglu(a, g)` with two tensors of one shape (timm SwiGLU: fc1_g, fc1_x), and
// `swiglu(x)` with the packed fc1 output x [..., 2H] (timm GluMlp, gate_last=False: silu on the
// first half), read in place with no chunk copies.
import { Tensor, fmt } from '../tensor.ts';
import { record } from '../graph.ts';
import { Params, launch } from './kernel.ts';

/** Grid of [ceil(cols / 64), rows] workgroups, rows spilling into z past 65535. */
function rowGrid(op: string, cols: number, rows: number): [number, number, number] {
  const x = Math.ceil(cols / 64);
  if (x > 65535) throw new Error(`${op}: a row of ${cols} elements is too long for one grid row`);
  return rows <= 65535 ? [x, rows, 1] : [x, 65535, Math.ceil(rows / 65535)];
}

/** silu(a) * g; with one argument, x [..., 2H] holds [a | g] along its last dimension. */
export function swiglu(a: Tensor, g?: Tensor): Tensor {
  const op = 'swiglu';
  if (a.dtype !== 'f32' || (g && g.dtype !== 'f32'))
    throw new Error(`${op}: expected f32 inputs, got ${a.dtype}${g ? ` and ${g.dtype}` : ''}`);
  if (a.ndim === 0) throw new Error(`${op}: input must have at least 1 dim`);
  const last = a.shape[a.ndim - 1];
  if (g && (g.ndim !== a.ndim || g.shape.some((d, i) => d !== a.shape[i])))
    throw new Error(`${op}: a ${fmt(a.shape)} and g ${fmt(g.shape)} must have one shape (no broadcasting)`);
  if (!g && last % 2 !== 0)
    throw new Error(`${op}: the packed input's last dim (${last}) must be even: [a | g], each half H wide`);
  const cols = g ? last : last / 2;
  const outShape = [...a.shape.slice(0, -1), cols];
  const out = Tensor.empty(outShape, 'f32', op);
  const rows = cols === 0 ? 0 : out.size / cols;
  const q = cols % 4 === 0 ? 4 : 1;
  const T = q === 4 ? 'vec4<f32>' : 'f32';
  const w = cols / q;
  if (out.size > 0) {
    launch({
      op,
      shader: 'swiglu',
      inputs: [a, g ?? a],
      outputs: [out],
      params: { T },
      uniforms: new Params().u32(
        g ? { rows, cols: w, lda: w, ldg: w, og: 0 } : { rows, cols: w, lda: 2 * w, ldg: 2 * w, og: w },
      ),
      workgroups: rowGrid(op, w, rows),
    });
  }
  return record(out, op, g ? [a, g] : [a], (dy) => {
    if (!g) {
      const dx = Tensor.empty(a.shape, 'f32', 'swiglu-backward');
      if (dx.size > 0) {
        launch({
          op: 'swiglu-backward',
          shader: 'swiglu-backward-packed',
          inputs: [a, dy],
          outputs: [dx],
          params: { T },
          uniforms: new Params().u32({ rows, cols: w }),
          workgroups: rowGrid(op, w, rows),
        });
      }
      return [dx];
    }
    const da = Tensor.empty(a.shape, 'f32', 'swiglu-backward');
    const dg = Tensor.empty(a.shape, 'f32', 'swiglu-backward');
    if (da.size > 0) {
      launch({
        op: 'swiglu-backward',
        shader: 'swiglu-backward',
        inputs: [a, g, dy],
        outputs: [da, dg],
        params: { T },
        uniforms: new Params().u32({ rows, cols: w }),
        workgroups: rowGrid(op, w, rows),
      });
    }
    // Gradients an input does not need are dropped by the walk (it checks requiresGrad).
    return [da, dg];
  });
}
