// Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay,
// as torch.optim.SGD (PyTorch 1.13 _single_tensor_sgd; Nesterov as Sutskever et al. 2013):
//   d = g + wd·p;  buf = d (first step) or momentum·buf + (1 - dampening)·d;
//   d = nesterov ? d + momentum·buf : buf;  p -= lr·d
// One dispatch per flat slab (shaders/optim-sgd.wgsl).
import type { Tensor } from '../tensor.ts';
import { Optimizer, type HyperRow, type OptimizerOptions, type ParamGroup, type ParamGroupSpec } from './optimizer.ts';

export interface SGDOptions extends OptimizerOptions {
  momentum: number;
  dampening: number;
  nesterov: boolean;
}

export class SGD extends Optimizer<SGDOptions> {
  constructor(
    params: readonly Tensor[] | readonly ParamGroupSpec<SGDOptions>[],
    opts: Partial<SGDOptions> & { lr: number },
  ) {
    super(
      params,
      { momentum: 0, dampening: 0, nesterov: false, weightDecay: 0, ...opts },
      { name: 'SGD', shader: 'optim-sgd', states: ['momentum_buffer'] },
    );
    for (const g of this.paramGroups) {
      if (!(g.lr >= 0)) throw new Error(`SGD: invalid learning rate ${g.lr}`);
      if (!(g.momentum >= 0)) throw new Error(`SGD: invalid momentum ${g.momentum}`);
      if (!(g.weightDecay >= 0)) throw new Error(`SGD: invalid weight decay ${g.weightDecay}`);
      if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0))
        throw new Error('SGD: Nesterov momentum requires a momentum and zero dampening');
    }
  }

  protected hyper(g: ParamGroup<SGDOptions>, step: number): HyperRow {
    return {
      lr: g.lr * g.lrScale,
      wd: g.weightDecay,
      momentum: g.momentum,
      dampening: g.dampening,
      nesterov: g.nesterov ? 1 : 0,
      first: step === 1 ? 1 : 0,
    };
  }
}
