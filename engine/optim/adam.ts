// Adam (Kingma & Ba 2015, arXiv 1412.6980) and AdamW (Loshchilov & Hutter 2019, "Decoupled
// Weight Decay Regularization", arXiv 1711.05101), with torch.optim.Adam / AdamW's defaults and
// update order (PyTorch 1.13 _single_tensor_adam / adamw): Adam adds wd·p to the gradient, AdamW
// multiplies p by 1 - lr·wd first. One dispatch per flat slab (shaders/optim-adam.wgsl).
import type { Tensor } from '../tensor.ts';
import { Optimizer, type HyperRow, type OptimizerOptions, type ParamGroup, type ParamGroupSpec } from './optimizer.ts';

export interface AdamOptions extends OptimizerOptions {
  betas: readonly [number, number];
  eps: number;
}

type Params = readonly Tensor[] | readonly ParamGroupSpec<AdamOptions>[];

export class Adam extends Optimizer<AdamOptions> {
  protected readonly decoupled: boolean;

  constructor(params: Params, opts: Partial<AdamOptions> = {}, decoupled = false) {
    const name = decoupled ? 'AdamW' : 'Adam';
    super(
      params,
      { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: decoupled ? 1e-2 : 0, ...opts },
      {
        name,
        shader: 'optim-adam',
        params: { SECOND: 'h.beta2 * v0 + (1.0 - h.beta2) * g * g' },
        states: ['exp_avg', 'exp_avg_sq'],
      },
    );
    this.decoupled = decoupled;
    for (const g of this.paramGroups) checkAdamOptions(name, g);
  }

  protected hyper(g: ParamGroup<AdamOptions>, step: number): HyperRow {
    const lr = g.lr * g.lrScale;
    const [b1, b2] = g.betas;
    return {
      p_mul: this.decoupled ? 1 - lr * g.weightDecay : 1,
      wd: this.decoupled ? 0 : g.weightDecay,
      beta1: b1,
      beta2: b2,
      eps: g.eps,
      step_size: lr / (1 - b1 ** step),
      sqrt_bc2: Math.sqrt(1 - b2 ** step),
    };
  }
}

export class AdamW extends Adam {
  constructor(params: Params, opts: Partial<AdamOptions> = {}) {
    super(params, opts, true);
  }
}

export function checkAdamOptions(name: string, g: AdamOptions): void {
  if (!(g.lr >= 0)) throw new Error(`${name}: invalid learning rate ${g.lr}`);
  if (!(g.eps >= 0)) throw new Error(`${name}: invalid epsilon ${g.eps}`);
  g.betas.forEach((b, i) => {
    if (!(b >= 0 && b < 1)) throw new Error(`${name}: invalid beta parameter at index ${i}: ${b}`);
  });
  if (!(g.weightDecay >= 0)) throw new Error(`${name}: invalid weight decay ${g.weightDecay}`);
}
