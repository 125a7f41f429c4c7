// Joining, splitting and tiling: cat, stack, split, chunk, repeat, repeatInterleave (PyTorch
// semantics). cat writes each input into its window of the output with strided-write.wgsl; the
// pieces of split and chunk are narrow() copies, so their backward is narrow's (a strided write
// into zeros) and autograd sums the pieces' gradients. repeat and repeatInterleave are an expand
// of a reshaped view (one strided copy); expand's backward (sumTo) folds the copies back.
// Reference: PyTorch docs for torch.cat, stack, split, chunk, Tensor.repeat, repeat_interleave.
import { Tensor, fmt } from '../tensor.ts';
import { record } from '../graph.ts';
import { stridesOf } from '../shape.ts';
import { stridedWrite, narrow, unsqueeze, reshape, expand } from './movement.ts';

function normDim(op: string, dim: number, rank: number): number {
  const d = dim < 0 ? dim + rank : dim;
  if (!Number.isInteger(d) || d < 0 || d >= rank)
    throw new Error(`${op}: dim ${dim} is out of range for a tensor of rank ${rank}`);
  return d;
}

export function cat(xs: Tensor[], dim = 0): Tensor {
  if (xs.length === 0) throw new Error('cat: expected a non-empty list of tensors');
  const first = xs[0];
  if (first.ndim === 0)
    throw new Error('cat: zero-dimensional tensors cannot be concatenated (unsqueeze them or use stack)');
  const d = normDim('cat', dim, first.ndim);
  for (const x of xs) {
    const ok = x.ndim === first.ndim && x.shape.every((s, i) => i === d || s === first.shape[i]);
    if (!ok) throw new Error(`cat: shapes ${xs.map((t) => fmt(t.shape)).join(', ')} must match except in dim ${d}`);
    if (x.dtype !== first.dtype) throw new Error(`cat: dtypes differ (${xs.map((t) => t.dtype).join(', ')})`);
  }
  const starts: number[] = [];
  let total = 0;
  for (const x of xs) {
    starts.push(total);
    total += x.shape[d];
  }
  const shape = first.shape.map((s, i) => (i === d ? total : s)); // n x [..., k_i, ...] -> [..., sum k_i, ...]
  const out = Tensor.empty(shape, first.dtype, 'cat');
  const strides = stridesOf(shape);
  xs.forEach((x, i) => stridedWrite('cat', x, out, strides, starts[i] * strides[d]));
  return record(out, 'cat', xs, (dy) =>
    xs.map((x, i) => (x.requiresGrad ? narrow(dy, d, starts[i], x.shape[d]) : null)),
  );
}

export function stack(xs: Tensor[], dim = 0): Tensor {
  if (xs.length === 0) throw new Error('stack: expected a non-empty list of tensors');
  const first = xs[0];
  for (const x of xs) {
    if (x.ndim !== first.ndim || x.shape.some((s, i) => s !== first.shape[i])) {
      throw new Error(`stack: all shapes must be equal, got ${xs.map((t) => fmt(t.shape)).join(', ')}`);
    }
  }
  const d = normDim('stack', dim, first.ndim + 1);
  return cat(
    xs.map((x) => unsqueeze(x, d)),
    d,
  ); // n x [...] -> [..., n, ...]
}

/**
 * torch.split: an integer is the size of each piece (the last may be smaller); a list gives
 * every piece's size and must sum to the dim's size.
 */
export function split(x: Tensor, sizeOrSections: number | number[], dim = 0): Tensor[] {
  const d = normDim('split', dim, x.ndim);
  const n = x.shape[d];
  let sizes: number[];
  if (typeof sizeOrSections === 'number') {
    const s = sizeOrSections;
    if (!Number.isInteger(s) || s <= 0) throw new Error(`split: split size must be a positive integer, got ${s}`);
    sizes = [];
    for (let start = 0; start < n; start += s) sizes.push(Math.min(s, n - start));
    if (n === 0) sizes.push(0);
  } else {
    sizes = [...sizeOrSections];
    const total = sizes.reduce((a, b) => a + b, 0);
    if (sizes.some((s) => !Number.isInteger(s) || s < 0) || total !== n) {
      throw new Error(
        `split: sections ${JSON.stringify(sizes)} must be non-negative integers summing to ${n} ` +
          `(dim ${d} of ${fmt(x.shape)})`,
      );
    }
  }
  const out: Tensor[] = [];
  let start = 0;
  for (const s of sizes) {
    out.push(narrow(x, d, start, s));
    start += s;
  }
  return out;
}

/** torch.chunk: pieces of ceil(n / chunks) along dim; there may be fewer than `chunks`. */
export function chunk(x: Tensor, chunks: number, dim = 0): Tensor[] {
  if (!Number.isInteger(chunks) || chunks <= 0)
    throw new Error(`chunk: chunks must be a positive integer, got ${chunks}`);
  const d = normDim('chunk', dim, x.ndim);
  const n = x.shape[d];
  if (n === 0) return Array.from({ length: chunks }, () => narrow(x, d, 0, 0));
  return split(x, Math.ceil(n / chunks), d);
}

/** torch.Tensor.repeat: tiles x reps[i] times along dim i (x gets leading 1s if reps is longer). */
export function repeat(x: Tensor, reps: number[]): Tensor {
  if (reps.length < x.ndim || reps.some((r) => !Number.isInteger(r) || r < 0)) {
    throw new Error(
      `repeat: reps ${JSON.stringify(reps)} must be non-negative integers, at least one per dim of ${fmt(x.shape)}`,
    );
  }
  const shape = [...reps.slice(0, reps.length - x.ndim).map(() => 1), ...x.shape];
  const pairs = shape.flatMap((s) => [1, s]); // [A, B] -> [1, A, 1, B]
  const tiled = expand(
    reshape(x, pairs),
    shape.flatMap((s, i) => [reps[i], s]),
  ); // -> [rA, A, rB, B]
  return reshape(
    tiled,
    shape.map((s, i) => s * reps[i]),
  ); // -> [rA * A, rB * B]
}

/** torch.repeat_interleave with an integer count: each slice along dim repeated in place. */
export function repeatInterleave(x: Tensor, repeats: number, dim: number): Tensor {
  if (!Number.isInteger(repeats) || repeats < 0)
    throw new Error(`repeatInterleave: repeats must be a non-negative integer, got ${repeats}`);
  const d = normDim('repeatInterleave', dim, x.ndim);
  const wide = [...x.shape.slice(0, d + 1), repeats, ...x.shape.slice(d + 1)];
  const tiled = expand(unsqueeze(x, d + 1), wide); // [..., K, ...] -> [..., K, r, ...]
  return reshape(
    tiled,
    x.shape.map((s, i) => (i === d ? s * repeats : s)),
  ); // -> [..., K * r, ...]
}
