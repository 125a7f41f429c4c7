// Reverse-mode autograd: the backward walk. Ops record a GradNode on their outputs (graph.ts,
// which the ops import; this walk imports the ops, so it sits above them). `backward()`
// walks the graph in reverse topological order; gradients of a tensor used twice accumulate, and
// a gradient whose shape differs from its input's (broadcasting) is summed back here, in one
// place, so no op has to. References: micrograd (topological sort, += accumulation), PyTorch
// autograd semantics (leaf .grad accumulates across backward calls until zeroed, in place).
//
// Accumulation writes in place (addInPlace) into whichever of the two gradients the walk alone
// owns, so a tensor with several consumers costs no new buffer per extra consumer. "Owns" is
// strict, because a backward may pass its dy through unchanged (add gives the same tensor to both
// inputs) or as a view (reshape): the gradient was made during this walk (so it is no user
// cotangent or saved forward tensor), no other tensor shares its bytes (`soleOwner`), and no other
// pending entry or later input of the same node holds it. Otherwise a new sum is allocated.
import { Tensor, noGrad, fmt, nextTensorId } from './tensor.ts';
import { add, addInPlace, sumTo } from './ops/index.ts';
import { sameShape } from './shape.ts';

/** Back-propagates from `root` (a scalar, or any shape with a given cotangent). */
export function backward(root: Tensor, cotangent?: Tensor): void {
  if (!root.requiresGrad)
    throw new Error(`backward: tensor ${fmt(root.shape)} (made by ${root.op}) does not require grad`);
  if (!cotangent && root.size !== 1) {
    throw new Error(
      `backward: root has shape ${fmt(root.shape)}; give a cotangent of that shape or reduce to a scalar first`,
    );
  }
  if (cotangent && !sameShape(cotangent.shape, root.shape)) {
    throw new Error(`backward: cotangent ${fmt(cotangent.shape)} does not match root ${fmt(root.shape)}`);
  }
  const order = topoSort(root);
  const since = nextTensorId();
  noGrad(() => {
    const grads = new Map<Tensor, Tensor>();
    // How many entries of `grads` hold each gradient tensor.
    const holders = new Map<Tensor, number>();
    const hold = (g: Tensor, d: number) => {
      const n = (holders.get(g) ?? 0) + d;
      if (n > 0) holders.set(g, n);
      else holders.delete(g);
    };
    const set = (x: Tensor, g: Tensor) => {
      grads.set(x, g);
      hold(g, 1);
    };
    const owned = (g: Tensor, held: number) => g.id >= since && g.soleOwner && (holders.get(g) ?? 0) === held;
    set(root, cotangent ?? Tensor.fromArray([1], root.shape, root.dtype, 'backward'));
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k];
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      hold(g, -1);
      const node = t.gradFn;
      if (!node) {
        accumulateLeaf(t, g);
        continue;
      }
      const dxs = node.backward(g);
      node.inputs.forEach((x, i) => {
        const dx = dxs[i];
        if (!dx || !x.requiresGrad) return;
        const shaped = sameShape(dx.shape, x.shape) ? dx : sumTo(dx, x.shape);
        const prev = grads.get(x);
        if (!prev) return set(x, shaped);
        // A later input of this node may be handed the same tensor (a pass-through dy).
        const pending = (d: Tensor) => dxs.some((e, j) => j > i && e === d);
        let total: Tensor;
        if (prev !== shaped && owned(prev, 1) && !pending(prev)) total = addInPlace(prev, shaped);
        else if (prev !== shaped && owned(shaped, 0) && !pending(shaped)) total = addInPlace(shaped, prev);
        else total = add(prev, shaped);
        hold(prev, -1);
        set(x, total);
      });
    }
  });
}

function accumulateLeaf(t: Tensor, g: Tensor): void {
  if (!t.grad) {
    // A fresh view: the same gradient tensor may reach several leaves (add passes dy through).
    t.grad = g.view(g.shape, 'grad').keep();
  } else if (t.grad.soleOwner) {
    addInPlace(t.grad, g);
  } else {
    // .grad shares its bytes (a window of a clipped-gradient slab, a view someone holds): a new sum.
    const grad = add(t.grad, g);
    t.grad.dispose();
    t.grad = grad.keep();
  }
}

function topoSort(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: deep graphs (long training graphs) must not overflow the JS stack.
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const inputs = top[0].gradFn?.inputs ?? [];
    if (top[1] < inputs.length) {
      const next = inputs[top[1]++];
      if (next.requiresGrad && !seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      order.push(top[0]);
      stack.pop();
    }
  }
  return order;
}
