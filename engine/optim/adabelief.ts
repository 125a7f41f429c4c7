// AdaBelief (Zhuang et al. 2020, "AdaBelief Optimizer: Adapting Stepsizes by the Belief in
// Observed Gradients", NeurIPS, arXiv 2010.07468, Algorithm 2), as released in adabelief-pytorch
// 0.2.0 (github.com/juntang-zhuang/Adabelief-Optimizer, pypi_packages/adabelief_pytorch0.2.0):
//   decoupled weight decay (default): p *= 1 - lr·wd (fixedDecay: 1 - wd); else g += wd·p
//   m = b1·m + (1 - b1)·g
//   s = b2·s + (1 - b2)·(g - m)² + eps        (the package adds eps to the state in place)
//   p -= lr / (1 - b1^t) · m / (sqrt(s) / sqrt(1 - b2^t) + eps)
// Only rectify = false and amsgrad = false (the settings EndoExtend24 uses) are implemented.
// Defaults as the package: lr 1e-3, betas (0.9, 0.999), eps 1e-16, wd 0, weight_decouple on.
import type { Tensor } from '../tensor.ts';
import { Optimizer, type HyperRow, type ParamGroup, type ParamGroupSpec } from './optimizer.ts';
import { checkAdamOptions, type AdamOptions } from './adam.ts';

export interface AdaBeliefOptions extends AdamOptions {
  /** Decoupled weight decay as AdamW (the package's weight_decouple, default true). */
  weightDecouple: boolean;
  /** With weightDecouple: p *= 1 - wd instead of 1 - lr·wd. */
  fixedDecay: boolean;
  /** Only false is supported (the package defaults to true: pass rectify: false explicitly). */
  rectify: false;
}

export class AdaBelief extends Optimizer<AdaBeliefOptions> {
  constructor(
    params: readonly Tensor[] | readonly ParamGroupSpec<AdaBeliefOptions>[],
    opts: Partial<AdaBeliefOptions> = {},
  ) {
    super(
      params,
      {
        lr: 1e-3,
        betas: [0.9, 0.999],
        eps: 1e-16,
        weightDecay: 0,
        weightDecouple: true,
        fixedDecay: false,
        rectify: false,
        ...opts,
      },
      {
        name: 'AdaBelief',
        shader: 'optim-adam',
        params: { SECOND: 'h.beta2 * v0 + (1.0 - h.beta2) * (g - m) * (g - m) + h.eps' },
        states: ['exp_avg', 'exp_avg_var'],
      },
    );
    for (const g of this.paramGroups) {
      checkAdamOptions('AdaBelief', g);
      if ((g.rectify as boolean) !== false)
        throw new Error('AdaBelief: rectify=true (the RAdam-style update) is not implemented; pass rectify: false');
    }
  }

  protected hyper(g: ParamGroup<AdaBeliefOptions>, step: number): HyperRow {
    const lr = g.lr * g.lrScale;
    const [b1, b2] = g.betas;
    return {
      p_mul: !g.weightDecouple ? 1 : g.fixedDecay ? 1 - g.weightDecay : 1 - lr * g.weightDecay,
      wd: g.weightDecouple ? 0 : g.weightDecay,
      beta1: b1,
      beta2: b2,
      eps: g.eps,
      step_size: lr / (1 - b1 ** step),
      sqrt_bc2: Math.sqrt(1 - b2 ** step),
    };
  }
}
