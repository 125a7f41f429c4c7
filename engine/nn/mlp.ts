// The transformer MLP and stochastic depth as timm writes them (timm/layers/mlp.py::Mlp,
// timm/layers/drop.py::DropPath), with the activation modules they take (torch.nn GELU, ReLU,
// SiLU; parameter-free).
// Mlp: fc1 -> act -> drop1 -> norm -> fc2 -> drop2, keys fc1.*, [norm.*,] fc2.* (act, drops and
// an absent norm hold no state). Linear layers by default, 1x1 Conv2d with useConv (timm's
// ConvMlp-style use on [N, C, H, W]); both keep their own default init.
// DropPath: per-sample stochastic depth (Huang et al. 2016, arXiv 1603.09382) in training,
// identity in eval; a kept sample is scaled by 1 / (1 - p) when scaleByKeep (timm's default).
import { Tensor, noGrad } from '../tensor.ts';
import { gelu, relu, silu, mul } from '../ops/index.ts';
import { dropPath } from '../ops/drop-path.ts';
import { bernoulli, defaultGenerator, type Generator } from '../ops/creation.ts';
import { Module } from './module.ts';
import { Linear, Dropout, Identity, type Layer } from './layers.ts';
import { Conv2d } from './vision.ts';

export class GELU extends Module {
  constructor(readonly approximate: 'none' | 'tanh' = 'none') {
    super();
  }
  forward(x: Tensor): Tensor {
    return gelu(x, this.approximate);
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class SiLU extends Module {
  forward(x: Tensor): Tensor {
    return silu(x);
  }
}

export interface MlpOptions {
  /** Default: inFeatures. */
  hiddenFeatures?: number;
  /** Default: inFeatures. */
  outFeatures?: number;
  /** Makes the activation (default nn.GELU, exact erf form). */
  actLayer?: () => Layer;
  /** Makes a norm over the hidden features, applied after drop1 (default none). */
  normLayer?: (features: number) => Layer;
  /** Bias of fc1 and fc2 (one value for both, or [fc1, fc2]). */
  bias?: boolean | [boolean, boolean];
  /** Dropout after the activation and after fc2 (one value for both, or [drop1, drop2]). */
  drop?: number | [number, number];
  /** 1x1 Conv2d instead of Linear: the MLP acts on the channels of [N, C, H, W]. */
  useConv?: boolean;
  generator?: Generator;
}

export class Mlp extends Module {
  fc1: Layer;
  act: Layer;
  drop1: Dropout;
  norm: Layer;
  fc2: Layer;
  drop2: Dropout;
  constructor(
    readonly inFeatures: number,
    opts: MlpOptions = {},
  ) {
    super();
    const {
      hiddenFeatures = inFeatures,
      outFeatures = inFeatures,
      actLayer = () => new GELU(),
      normLayer,
      useConv = false,
      generator = defaultGenerator,
    } = opts;
    const [bias1, bias2] = typeof opts.bias === 'object' ? opts.bias : [opts.bias ?? true, opts.bias ?? true];
    const [p1, p2] = typeof opts.drop === 'object' ? opts.drop : [opts.drop ?? 0, opts.drop ?? 0];
    const linear = (i: number, o: number, bias: boolean): Layer =>
      useConv ? new Conv2d(i, o, 1, { bias, generator }) : new Linear(i, o, { bias, generator });
    this.fc1 = linear(inFeatures, hiddenFeatures, bias1);
    this.act = actLayer();
    this.drop1 = new Dropout(p1, generator);
    this.norm = normLayer ? normLayer(hiddenFeatures) : new Identity();
    this.fc2 = linear(hiddenFeatures, outFeatures, bias2);
    this.drop2 = new Dropout(p2, generator);
  }

  /** [..., in] -> [..., out] (useConv: [N, in, H, W] -> [N, out, H, W]). */
  forward(x: Tensor): Tensor {
    // [..., in] -> [..., hidden]
    const h = this.norm.forward(this.drop1.forward(this.act.forward(this.fc1.forward(x))));
    return this.drop2.forward(this.fc2.forward(h)); // [..., hidden] -> [..., out]
  }
}

export class DropPath extends Module {
  constructor(
    readonly dropProb = 0,
    readonly scaleByKeep = true,
    readonly generator: Generator = defaultGenerator,
  ) {
    super();
    if (!(dropProb >= 0 && dropProb <= 1)) throw new Error(`DropPath: drop_prob must be in [0, 1], got ${dropProb}`);
  }

  /** x [B, ...]: each sample's whole tensor is kept or zeroed in training. */
  forward(x: Tensor): Tensor {
    if (this.scaleByKeep || !this.training || this.dropProb === 0)
      return dropPath(x, this.dropProb, this.training, this.generator);
    const mask = noGrad(() =>
      bernoulli([x.shape[0], ...x.shape.slice(1).map(() => 1)], 1 - this.dropProb, this.generator),
    ); // [B, 1, ..., 1]
    return mul(x, mask);
  }
}
