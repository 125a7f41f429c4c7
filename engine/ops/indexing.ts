// Indexing ops with PyTorch semantics: gather, indexSelect, scatterAdd, indexAdd, embedding,
// maskedFill, and checkIndexRange. Indices are i32 tensors.
//
// The backward of a gather (gather, indexSelect, embedding) is a scatter-add. WGSL has no float
// atomics, and gradients must be bitwise reproducible, so every scatter-add sums in a fixed
// order (increasing source position), with no atomics at all:
//  (a) loop (scatter-add.wgsl): each output element owns its sum and scans the index entries that
//      could reach it: O(x.size * index.shape[dim]) index reads. Cheap when the indexed dim or the
//      index is short (a label gather, a small vocabulary); it is the route scatterAdd takes.
//  (b) sorted (index-sort.wgsl, index-offsets.wgsl, index-add-sorted.wgsl), for indexAdd and so
//      for the embedding backward: the (index, position) pairs are sorted with a bitonic network
//      (distinct pairs, so a unique order), each index value finds its segment by binary search,
//      and each output element sums its segment in position order: O(n log^2 n) for the sort
//      (log^2 n dispatches) plus one read per src element. Same order as (a): identical bits.
// indexAdd picks the cheaper route ('auto'); both can be forced for tests and benchmarks.
//
// Out-of-range indices: checking them costs a readback (a sync), so the ops do not. Kernels never
// read or write out of bounds: a gather reads 0 for an index outside [0, size), a scatter-add
// skips it. `checkIndexRange` reads an index back and throws naming the op, value and range;
// data loaders call it once on host-made ids (e.g. before embedding) where a silent 0 would hide
// a bug.
// References: PyTorch docs (torch.gather, index_select, scatter_add, index_add, embedding,
// masked_fill); bitonic sort (Batcher 1968).
import { Tensor, fmt, type Shape } from '../tensor.ts';
import { record } from '../graph.ts';
import { Params, grid, launch, WGSL_TYPE, MAX_RANK } from './kernel.ts';
import { whereRaw } from './elementwise.ts';
import { broadcastShapes, stridesOf } from '../shape.ts';
import { fill, reshape } from './movement.ts';
import { pad } from './pad.ts';

const VALUE_DTYPES = ['f32', 'i32', 'u32'];

function normDim(op: string, dim: number, shape: Shape): number {
  const d = dim < 0 ? dim + shape.length : dim;
  if (!Number.isInteger(d) || d < 0 || d >= shape.length)
    throw new Error(`${op}: dim ${dim} is out of range for shape ${fmt(shape)}`);
  return d;
}

function checkIndex(op: string, index: Tensor): void {
  if (index.dtype !== 'i32') throw new Error(`${op}: index ${fmt(index.shape)} has dtype ${index.dtype}, expected i32`);
}

function checkValues(op: string, x: Tensor, what = 'input'): void {
  if (!VALUE_DTYPES.includes(x.dtype))
    throw new Error(`${op}: ${what} ${fmt(x.shape)} has dtype ${x.dtype}, expected f32, i32 or u32`);
  if (x.ndim > MAX_RANK) throw new Error(`${op}: rank ${x.ndim} exceeds ${MAX_RANK}`);
}

/** Reads `index` back and throws if a value lies outside [0, size) (a sync: call it sparingly). */
export async function checkIndexRange(op: string, index: Tensor, size: number): Promise<void> {
  checkIndex(op, index);
  const data = await index.data();
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < 0 || v >= size)
      throw new Error(
        `${op}: index ${v} at flat position ${i} of index ${fmt(index.shape)} is out of range [0, ${size})`,
      );
  }
}

// ---- gather family ---------------------------------------------------------------------------

/** out[o] = x[o with o[d] = index[o . istr]] over `shape` (gather.wgsl). */
function gatherRaw(op: string, x: Tensor, d: number, index: Tensor, shape: Shape, istr: number[]): Tensor {
  const out = Tensor.empty(shape, x.dtype, op);
  if (out.size === 0) return out;
  launch({
    op,
    shader: 'gather',
    inputs: [x, index],
    outputs: [out],
    params: { T: WGSL_TYPE[x.dtype] },
    uniforms: new Params()
      .dims('shape', shape)
      .dims('istr', istr)
      .dims('xstr', stridesOf(x.shape))
      .u32({ n: out.size, rank: shape.length, dim: d, size: x.shape[d] }),
    workgroups: grid(out.size),
  });
  return out;
}

/** torch.gather: out[i][j][k] = x[i][index[i][j][k]][k] (dim 1); out has index's shape. */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  checkIndex('gather', index);
  checkValues('gather', x);
  const d = normDim('gather', dim, x.shape);
  if (index.ndim !== x.ndim || index.shape.some((s, i) => i !== d && s > x.shape[i])) {
    throw new Error(
      `gather: index ${fmt(index.shape)} must have the rank of input ${fmt(x.shape)} ` +
        `and no larger size outside dim ${d}`,
    );
  }
  const y = gatherRaw('gather', x, d, index, index.shape, stridesOf(index.shape));
  return record(y, 'gather', [x], (dy) => [scatterAdd(fill(x.shape, 0, dy.dtype, 'gather-backward'), d, index, dy)]);
}

/** torch.index_select: the slices x[..., index[j], ...] along dim, in index order. */
export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  checkIndex('indexSelect', index);
  checkValues('indexSelect', x);
  const d = normDim('indexSelect', dim, x.shape);
  if (index.ndim > 1) throw new Error(`indexSelect: index must be 1-d, got ${fmt(index.shape)}`);
  const shape = x.shape.map((s, i) => (i === d ? index.size : s)); // [..., K, ...] -> [..., n, ...]
  const istr = shape.map((_, i) => (i === d ? 1 : 0));
  const y = gatherRaw('indexSelect', x, d, index, shape, istr);
  return record(y, 'indexSelect', [x], (dy) => [
    indexAdd(fill(x.shape, 0, dy.dtype, 'indexSelect-backward'), d, index, dy),
  ]);
}

/** torch.nn.functional.embedding: rows of weight [V, D] picked by ids of any shape. */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  checkIndex('embedding', ids);
  if (weight.ndim !== 2)
    throw new Error(`embedding: weight must be [num_embeddings, embedding_dim], got ${fmt(weight.shape)}`);
  const rows = indexSelect(weight, 0, reshape(ids, [ids.size])); // [V, D] -> [N, D]
  return reshape(rows, [...ids.shape, weight.shape[1]]); // [N, D] -> [...ids.shape, D]
}

// ---- scatter-add family ----------------------------------------------------------------------

/** Route (a): out = x + scatter of src through index (scatter-add.wgsl). */
function scatterAddLoop(
  op: string,
  x: Tensor,
  d: number,
  index: Tensor,
  src: Tensor,
  ishape: Shape,
  istr: number[],
): Tensor {
  const out = Tensor.empty(x.shape, x.dtype, op);
  if (out.size === 0) return out;
  launch({
    op,
    shader: 'scatter-add',
    inputs: [x, index, src],
    outputs: [out],
    params: { T: WGSL_TYPE[x.dtype] },
    uniforms: new Params()
      .dims('shape', x.shape)
      .dims('ishape', ishape)
      .dims('istr', istr)
      .dims('sstr', stridesOf(src.shape))
      .u32({ n: out.size, rank: x.ndim, dim: d }),
    workgroups: grid(out.size),
  });
  return out;
}

/** torch.scatter_add (out of place): out[i][index[i][j]] += src[i][j] (dim 1). */
export function scatterAdd(x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  checkIndex('scatterAdd', index);
  checkValues('scatterAdd', x);
  const d = normDim('scatterAdd', dim, x.shape);
  if (src.dtype !== x.dtype) throw new Error(`scatterAdd: src dtype ${src.dtype} differs from input dtype ${x.dtype}`);
  const fits =
    index.ndim === x.ndim &&
    src.ndim === x.ndim &&
    index.shape.every((s, i) => s <= src.shape[i] && (i === d || s <= x.shape[i]));
  if (!fits) {
    throw new Error(
      `scatterAdd: index ${fmt(index.shape)} must have the rank of input ${fmt(x.shape)} ` +
        `and src ${fmt(src.shape)}, be no larger than src, and no larger than input outside dim ${d}`,
    );
  }
  const y = scatterAddLoop('scatterAdd', x, d, index, src, index.shape, stridesOf(index.shape));
  return record(y, 'scatterAdd', [x, src], (dy) => {
    if (!src.requiresGrad) return [dy, null];
    const dsrc = gather(dy, d, index); // index's shape; src positions no index reaches get 0
    const grow = src.shape.flatMap((_, k) => [0, src.shape[src.ndim - 1 - k] - index.shape[src.ndim - 1 - k]]);
    return [dy, grow.some((g) => g > 0) ? pad(dsrc, grow) : dsrc];
  });
}

export type ScatterRoute = 'auto' | 'loop' | 'sorted';

// One dispatch costs about as much as this many element operations (recording, launch).
const DISPATCH_COST = 4096;

/** Route (b): sorted (index, position) pairs, segment offsets, then one segmented sum. */
function indexAddSorted(x: Tensor, d: number, index: Tensor, src: Tensor): Tensor {
  const n = index.size;
  const size = x.shape[d];
  const m = 2 ** Math.ceil(Math.log2(Math.max(n, 2)));
  const pairs = Tensor.empty([2 * m], 'u32', 'indexAdd-sort');
  const offsets = Tensor.empty([size + 1], 'u32', 'indexAdd-offsets');
  const sort = (mode: number, k: number, j: number) =>
    launch({
      op: 'indexAdd-sort',
      shader: 'index-sort',
      inputs: [index],
      outputs: [pairs],
      uniforms: new Params().u32({ n, m, size, mode, k, j }),
      workgroups: grid(m),
    });
  sort(0, 0, 0);
  for (let k = 2; k <= m; k *= 2) for (let j = k / 2; j >= 1; j /= 2) sort(1, k, j);
  launch({
    op: 'indexAdd-offsets',
    shader: 'index-offsets',
    inputs: [pairs],
    outputs: [offsets],
    uniforms: new Params().u32({ m, size }),
    workgroups: grid(size + 1),
  });
  const out = Tensor.empty(x.shape, x.dtype, 'indexAdd');
  launch({
    op: 'indexAdd',
    shader: 'index-add-sorted',
    inputs: [x, src, pairs, offsets],
    outputs: [out],
    params: { T: WGSL_TYPE[x.dtype] },
    uniforms: new Params().u32({
      n: out.size,
      size,
      post: x.shape.slice(d + 1).reduce((a, b) => a * b, 1),
      count: n,
    }),
    workgroups: grid(out.size),
  });
  pairs.dispose();
  offsets.dispose();
  return out;
}

function chooseRoute(x: Tensor, n: number, src: Tensor): 'loop' | 'sorted' {
  const lg = Math.ceil(Math.log2(Math.max(n, 2)));
  const sortedCost = ((lg * (lg + 1)) / 2 + 3) * (2 ** lg + DISPATCH_COST) + x.size + src.size;
  return x.size * n > sortedCost ? 'sorted' : 'loop';
}

/** torch.index_add (out of place, alpha 1): out[..., index[j], ...] += src[..., j, ...]. */
export function indexAdd(x: Tensor, dim: number, index: Tensor, src: Tensor, route: ScatterRoute = 'auto'): Tensor {
  checkIndex('indexAdd', index);
  checkValues('indexAdd', x);
  const d = normDim('indexAdd', dim, x.shape);
  if (index.ndim > 1) throw new Error(`indexAdd: index must be 1-d, got ${fmt(index.shape)}`);
  if (src.dtype !== x.dtype) throw new Error(`indexAdd: src dtype ${src.dtype} differs from input dtype ${x.dtype}`);
  const want = x.shape.map((s, i) => (i === d ? index.size : s));
  if (src.ndim !== x.ndim || src.shape.some((s, i) => s !== want[i])) {
    throw new Error(
      `indexAdd: src ${fmt(src.shape)} must be ${fmt(want)} (input ${fmt(x.shape)} with dim ${d} the index's length)`,
    );
  }
  const n = index.size;
  const r = route === 'auto' ? chooseRoute(x, n, src) : route;
  const y =
    x.size === 0 || n === 0 || r === 'loop'
      ? scatterAddLoop(
          'indexAdd',
          x,
          d,
          index,
          src,
          want,
          want.map((_, i) => (i === d ? 1 : 0)),
        )
      : indexAddSorted(x, d, index, src);
  return record(y, 'indexAdd', [x, src], (dy) => [dy, src.requiresGrad ? indexSelect(dy, d, index) : null]);
}

// ---- masked fill -----------------------------------------------------------------------------

/** torch.masked_fill: value where mask is non-zero (mask broadcasts to x's shape). */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  const shape = broadcastShapes('maskedFill', x.shape, mask.shape);
  if (shape.length !== x.ndim || shape.some((s, i) => s !== x.shape[i])) {
    throw new Error(`maskedFill: mask ${fmt(mask.shape)} must broadcast to the input's shape ${fmt(x.shape)}`);
  }
  checkValues('maskedFill', x);
  const y = whereRaw(mask, Tensor.fromArray([value], [], x.dtype, 'maskedFill'), x);
  return record(y, 'maskedFill', [x], (dy) => [
    whereRaw(mask, Tensor.fromArray([0], [], dy.dtype, 'maskedFill-backward'), dy),
  ]);
}
