// Reverse-mode autograd: the backward walk. Ops record a GradNode on their outputs (graph.ts,
// which the ops import; this walk imports the ops, so it sits above them). `backward()`
// walks the graph in reverse topological order; gradients of a tensor used twice accumulate, and
// a gradient whose shape differs from its input's (broadcasting) is summed back here, in one
// place, so no op has to. References: micrograd (topological sort, += accumulation), PyTorch
// autograd semantics (leaf .grad accumulates across backward calls until zeroed).
import { Tensor, noGrad, fmt, type Shape } from './tensor.ts';
import { add, sumTo } from './ops/index.ts';
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
  noGrad(() => {
    const grads = new Map<Tensor, Tensor>();
    grads.set(root, cotangent ?? Tensor.fromArray([1], root.shape, root.dtype, 'backward'));
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k];
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
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
        grads.set(x, prev ? add(prev, shaped) : shaped);
      });
    }
  });
}

function accumulateLeaf(t: Tensor, g: Tensor): void {
  // A fresh view: the same gradient tensor may reach several leaves (add passes dy through).
  const grad = t.grad ? add(t.grad, g) : g.view(g.shape, 'grad');
  t.grad?.dispose();
  t.grad = grad.keep();
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
