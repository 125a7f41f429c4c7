// Matmul and batched matmul with batch broadcasting and transpose flags. Transposes are folded
// into strides (no copy); the kernel is chosen per adapter (see matmul-kernels.ts).
// Backward: dA = dC @ op(B)^T, dB = op(A)^T @ dC, each reduced over broadcast batch dims by
// autograd's sumTo.
import { Tensor, fmt } from '../tensor.ts';
import { record } from '../graph.ts';
import { broadcastShapes, broadcastStrides } from '../shape.ts';
import { matmulKernel } from './matmul-kernels.ts';
import { halfOperands } from './autocast.ts';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
}

export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const { transA = false, transB = false } = opts;
  const half = halfOperands(a, b); // autocast: f16 operands, f16 kernel (autocast.ts)
  if (half) return matmul(half[0], half[1], opts);
  if (a.dtype !== b.dtype || (a.dtype !== 'f32' && a.dtype !== 'f16'))
    throw new Error(`matmul: expected f32 inputs, got ${a.dtype} and ${b.dtype} (or two f16)`);
  if (a.ndim < 1 || b.ndim < 1)
    throw new Error(`matmul: inputs must have at least 1 dim, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  // 1-d operands as in torch.matmul: a vector is a row (left) or a column (right), dropped after.
  const a2 = a.ndim === 1 ? a.view([1, a.shape[0]], 'matmul') : a;
  const b2 = b.ndim === 1 ? b.view([b.shape[0], 1], 'matmul') : b;
  const [m, ka] = transA
    ? [a2.shape[a2.ndim - 1], a2.shape[a2.ndim - 2]]
    : [a2.shape[a2.ndim - 2], a2.shape[a2.ndim - 1]];
  const [kb, n] = transB
    ? [b2.shape[b2.ndim - 1], b2.shape[b2.ndim - 2]]
    : [b2.shape[b2.ndim - 2], b2.shape[b2.ndim - 1]];
  if (ka !== kb) {
    throw new Error(
      `matmul: inner dimensions differ: ${fmt(a.shape)}${transA ? 'ᵀ' : ''} @ ${fmt(b.shape)}${transB ? 'ᵀ' : ''} (${ka} vs ${kb})`,
    );
  }
  const batch = broadcastShapes('matmul', a2.shape.slice(0, -2), b2.shape.slice(0, -2));
  if (batch.length > 4) throw new Error(`matmul: at most 4 batch dims are supported, got ${fmt(batch)}`);
  const outShape = [...batch, m, n];
  const out = Tensor.empty(outShape, 'f32', 'matmul');
  if (out.size > 0) {
    const ra = a2.shape[a2.ndim - 2],
      ca = a2.shape[a2.ndim - 1];
    const rb = b2.shape[b2.ndim - 2],
      cb = b2.shape[b2.ndim - 1];
    matmulKernel({
      a: a2,
      b: b2,
      out,
      batch,
      m,
      n,
      k: ka,
      bsa: broadcastStrides(a2.shape.slice(0, -2), batch).map((s) => s * ra * ca),
      bsb: broadcastStrides(b2.shape.slice(0, -2), batch).map((s) => s * rb * cb),
      sam: transA ? 1 : ca,
      sak: transA ? ca : 1,
      sbk: transB ? 1 : cb,
      sbn: transB ? cb : 1,
    });
  }
  if (a.ndim === 1) a2.dispose();
  if (b.ndim === 1) b2.dispose();
  let y = out;
  if (a.ndim === 1 || b.ndim === 1) {
    const s = [...batch, ...(a.ndim === 1 ? [] : [m]), ...(b.ndim === 1 ? [] : [n])];
    y = out.view(s, 'matmul');
    out.dispose();
  }
  return record(y, 'matmul', [a, b], (dy) => {
    const dC = dy.view(outShape, 'matmul-backward');
    const A = a.ndim === 1 ? a.view([1, a.shape[0]], 'matmul-backward') : a;
    const B = b.ndim === 1 ? b.view([b.shape[0], 1], 'matmul-backward') : b;
    // C = opA(A) opB(B): d opA(A) = dC opB(B)^T; d opB(B) = opA(A)^T dC.
    const dA = !a.requiresGrad
      ? null
      : transA
        ? matmul(B, dC, { transA: transB, transB: true })
        : matmul(dC, B, { transB: !transB });
    const dB = !b.requiresGrad
      ? null
      : transB
        ? matmul(dC, A, { transA: true, transB: transA })
        : matmul(A, dC, { transA: !transA });
    return [
      dA && (a.ndim === 1 ? dA.view(dA.shape.slice(0, -2).concat(a.shape[0]), 'matmul-backward') : dA),
      dB && (b.ndim === 1 ? dB.view(dB.shape.slice(0, -2).concat(b.shape[0]), 'matmul-backward') : dB),
    ];
  });
}
