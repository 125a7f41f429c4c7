// Activation checkpointing, as PyTorch's torch.utils.checkpoint (Chen et al. 2016, "Training Deep
// Nets with Sublinear Memory Cost", arXiv 1604.06174): the forward of `fn` drops its graph and
// frees its intermediates at once, keeping only the inputs; the backward replays
// `fn` with the graph on, from the same random-generator states (dropout and drop-path masks come
// out identical), and back-propagates through the replay. Peak memory falls from "every block's
// activations" to "one block's", for one extra forward per checkpointed block.
//
// The replay's leaves are fresh views of the inputs, so the inner walk stops at them and their
// .grad is the input gradient; parameters used inside `fn` (leaves, reached by closure)
// accumulate their .grad directly, as in PyTorch's reentrant variant. A non-leaf tensor that `fn`
// reaches by closure would make the inner walk run into the outer graph: that is an error here
// (pass such tensors as inputs). The replay runs under the autocast state of the forward.
import { Tensor, enableGrad, isGradEnabled, noGrad, tidy } from '../tensor.ts';
import { detach, requiresGrad } from '../graph.ts';
import { backward } from '../autograd.ts';
import { autocast, autocastActive } from '../ops/autocast.ts';
import { defaultGenerator, type Generator, type GeneratorState } from '../ops/creation.ts';

export interface CheckpointOptions {
  /** Generators `fn` draws from besides the default one (a model's own, for its dropout). */
  generators?: readonly Generator[];
}

/** y = fn(...inputs), storing only `inputs` for the backward, which recomputes fn. */
export function checkpoint(
  fn: (...xs: Tensor[]) => Tensor,
  inputs: readonly Tensor[],
  opts: CheckpointOptions = {},
): Tensor {
  if (inputs.length === 0) throw new Error('checkpoint: give fn at least one input tensor');
  if (!isGradEnabled()) return fn(...inputs);
  const gens = [defaultGenerator, ...(opts.generators ?? []).filter((g) => g !== defaultGenerator)];
  const states = gens.map((g) => g.getState());
  // The replay runs in the backward, outside any autocast scope: it re-enters this one's state.
  const amp = autocastActive();
  // The recorded node below is what makes y require grad; fn's own graph is never built.
  // The forward runs in grad mode like the replay (some ops pick another kernel when no grad is
  // recorded: the fused attention forward, say), so the output is bit-identical to the replay's
  // and to the uncheckpointed model's; tidy frees fn's intermediates and the graph they formed.
  const y = tidy(() => fn(...inputs));
  const out = inputs.includes(y) ? y.view(y.shape, 'checkpoint') : y; // never re-home an input's graph
  // Set by hand, not by record(): parameters read by fn require grad even where no input does
  // (the first block's input), and PyTorch's reentrant variant losing their grads is a known trap.
  out.requiresGrad = true;
  out.gradFn = { op: 'checkpoint', inputs: [...inputs], backward: (dy) => replay(fn, inputs, gens, states, amp, dy) };
  return out;
}

function replay(
  fn: (...xs: Tensor[]) => Tensor,
  inputs: readonly Tensor[],
  gens: Generator[],
  states: GeneratorState[],
  amp: boolean,
  dy: Tensor,
): (Tensor | null)[] {
  const now = gens.map((g) => g.getState());
  gens.forEach((g, i) => g.setState(states[i]));
  try {
    const grads = tidy(() =>
      enableGrad(() => {
        const leaves = inputs.map((x) =>
          requiresGrad(detach(x), x.requiresGrad && (x.dtype === 'f32' || x.dtype === 'f16')),
        );
        const y = autocast(() => fn(...leaves), { enabled: amp });
        if (!y.requiresGrad) return inputs.map(() => null);
        assertNoOuterGraph(y, leaves[0].id);
        noGrad(() => backward(y, dy));
        return leaves.map((l) => {
          const g = l.grad;
          if (g) g.kept = false; // the outer walk owns it now: the enclosing tidy frees it
          return g;
        });
      }),
    );
    return grads;
  } finally {
    gens.forEach((g, i) => g.setState(now[i]));
  }
}

/** Throws if the replayed graph reaches a tensor with a graph node made before the replay. */
function assertNoOuterGraph(root: Tensor, startId: number): void {
  const seen = new Set<Tensor>([root]);
  const stack = [root];
  while (stack.length) {
    const t = stack.pop()!;
    if (!t.gradFn) continue;
    if (t.id < startId) {
      throw new Error(
        `checkpoint: fn reads a tensor made by ${t.op} outside it that carries a graph; ` +
          'pass it to checkpoint as an input',
      );
    }
    for (const x of t.gradFn.inputs)
      if (x.requiresGrad && !seen.has(x)) {
        seen.add(x);
        stack.push(x);
      }
  }
}
