// Shape arithmetic shared by the ops, autograd and the modules: broadcasting (NumPy/PyTorch rules,
// right-aligned), row-major strides, axis normalisation (negative axes as PyTorch) and the row
// view of a tensor along one dimension. Pure functions of shapes; no tensor, no device.
import { fmt, type Shape } from './tensor.ts';

export type Axes = number | readonly number[] | undefined;

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Row-major contiguous strides. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const v = s[s.length - rank + i] ?? 1;
      if (v !== 1 && d !== 1 && v !== d) {
        throw new Error(
          `${op}: shapes ${shapes.map(fmt).join(' and ')} cannot be broadcast together (dimension ${i}: ${d} vs ${v})`,
        );
      }
      if (v !== 1) d = v;
    }
    out.push(d);
  }
  return out;
}

/** Strides of `shape` read through the (right-aligned) broadcast output shape `out`. */
export function broadcastStrides(shape: Shape, out: Shape): number[] {
  const own = stridesOf(shape);
  return out.map((d, i) => {
    const j = i - (out.length - shape.length);
    return j < 0 || shape[j] === 1 ? 0 : own[j];
  });
}

export function normAxes(op: string, shape: Shape, axes: Axes): number[] {
  const rank = shape.length;
  const list = axes === undefined ? shape.map((_, i) => i) : typeof axes === 'number' ? [axes] : [...axes];
  const out = list.map((a) => {
    const v = a < 0 ? a + rank : a;
    if (!Number.isInteger(v) || v < 0 || v >= Math.max(rank, 1))
      throw new Error(`${op}: axis ${a} is out of range for shape ${fmt(shape)}`);
    return v;
  });
  if (new Set(out).size !== out.length) throw new Error(`${op}: repeated axis in ${JSON.stringify(list)}`);
  return out.sort((x, y) => x - y);
}

/** A tensor seen as rows along `dim`: rows = outer * inner, each `len` long, elements `inner` apart. */
export interface RowLayout {
  rows: number;
  len: number;
  inner: number;
}

export function rowLayout(op: string, shape: Shape, dim: number): RowLayout {
  if (shape.length === 0) {
    // A 0-d tensor is one row of one element; dim 0 and -1 name it (as PyTorch).
    if (dim !== 0 && dim !== -1) throw new Error(`${op}: dim ${dim} is out of range for a 0-d tensor`);
    return { rows: 1, len: 1, inner: 1 };
  }
  const d = normAxes(op, shape, dim)[0];
  const len = shape[d];
  const inner = shape.slice(d + 1).reduce((a, b) => a * b, 1);
  const outer = shape.slice(0, d).reduce((a, b) => a * b, 1);
  return { rows: outer * inner, len, inner };
}
