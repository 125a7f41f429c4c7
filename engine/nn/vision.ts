// Convolution and normalisation layers for vision models, with PyTorch's parameter names, shapes,
// buffers and default initialisation (torch/nn/modules/conv.py, batchnorm.py, normalization.py;
// SAM's LayerNorm2d, segment_anything/modeling/common.py):
// - Conv2d / Conv1d / ConvTranspose2d: weight ~ kaiming_uniform(a = sqrt(5)), i.e.
//   U(+-1/sqrt(fan_in)), bias ~ U(+-1/sqrt(fan_in)), fan_in from the weight's shape
//   (_ConvNd.reset_parameters): conv weight [out, in/groups, k...] has fan_in = in/groups * k...;
//   a transposed conv's weight [in, out/groups, k...] has fan_in = out/groups * k....
// - BatchNorm1d / BatchNorm2d: weight ones, bias zeros, buffers running_mean (zeros), running_var
//   (ones), num_batches_tracked. Train mode normalises with the batch statistics and updates the
//   running ones (running_var with the unbiased batch variance); eval mode uses the running ones.
// - GroupNorm and LayerNorm2d (normalise over C at every pixel, eps 1e-6): weight ones, bias zeros.
// Deviations: num_batches_tracked is an i32 scalar (PyTorch: int64; WebGPU has no 64-bit
// integers); momentum = None (PyTorch's cumulative moving average) and track_running_stats =
// False are not supported; padding is numeric and zero-filled (no 'same'/'valid', no padding_mode).
import { Tensor, fmt, noGrad } from '../tensor.ts';
import { add, tensor } from '../ops/index.ts';
import { conv2d, conv1d, convTranspose2d, type IntPair } from '../ops/conv.ts';
import { batchNorm, groupNorm, layerNorm2d } from '../ops/norm.ts';
import { defaultGenerator, type Generator } from '../ops/creation.ts';
import { Module, parameter } from './module.ts';
import { copy_ } from '../flat.ts';
import { kaimingUniform, uniform, ones, zeros } from './init.ts';

// ---- convolutions --------------------------------------------------------------------------

export interface Conv2dLayerOptions {
  stride?: IntPair;
  padding?: IntPair;
  dilation?: IntPair;
  groups?: number;
  bias?: boolean;
  generator?: Generator;
}

export interface Conv1dLayerOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
  groups?: number;
  bias?: boolean;
  generator?: Generator;
}

export interface ConvTranspose2dLayerOptions extends Conv2dLayerOptions {
  outputPadding?: IntPair;
}

function pair(v: IntPair): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

/** PyTorch's default conv init: weight kaiming_uniform(a = sqrt(5)), bias U(+-1/sqrt(fan_in)). */
function convParams(shape: number[], biasSize: number | null, generator: Generator): [Tensor, Tensor | null] {
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  const weight = parameter(kaimingUniform(shape, { a: Math.sqrt(5), generator }));
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return [weight, biasSize !== null ? parameter(uniform([biasSize], -bound, bound, { generator })) : null];
}

function checkGroups(layer: string, inChannels: number, outChannels: number, groups: number): void {
  if (!Number.isInteger(groups) || groups < 1 || inChannels % groups !== 0 || outChannels % groups !== 0) {
    throw new Error(
      `${layer}: in_channels ${inChannels} and out_channels ${outChannels} must both be divisible by groups ${groups}`,
    );
  }
}

export class Conv2d extends Module {
  weight: Tensor;
  bias: Tensor | null;
  readonly kernelSize: [number, number];
  readonly stride: IntPair;
  readonly padding: IntPair;
  readonly dilation: IntPair;
  readonly groups: number;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: IntPair,
    opts: Conv2dLayerOptions = {},
  ) {
    super();
    const { stride = 1, padding = 0, dilation = 1, groups = 1, bias = true, generator = defaultGenerator } = opts;
    checkGroups('Conv2d', inChannels, outChannels, groups);
    this.kernelSize = pair(kernelSize);
    [this.stride, this.padding, this.dilation, this.groups] = [stride, padding, dilation, groups];
    [this.weight, this.bias] = convParams(
      [outChannels, inChannels / groups, ...this.kernelSize],
      bias ? outChannels : null,
      generator,
    );
  }

  /** [N, Cin, H, W] -> [N, Cout, OH, OW]. */
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
    });
  }
}

export class Conv1d extends Module {
  weight: Tensor;
  bias: Tensor | null;
  readonly stride: number;
  readonly padding: number;
  readonly dilation: number;
  readonly groups: number;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    opts: Conv1dLayerOptions = {},
  ) {
    super();
    const { stride = 1, padding = 0, dilation = 1, groups = 1, bias = true, generator = defaultGenerator } = opts;
    checkGroups('Conv1d', inChannels, outChannels, groups);
    [this.stride, this.padding, this.dilation, this.groups] = [stride, padding, dilation, groups];
    [this.weight, this.bias] = convParams(
      [outChannels, inChannels / groups, kernelSize],
      bias ? outChannels : null,
      generator,
    );
  }

  /** [N, Cin, L] -> [N, Cout, Lout]. */
  forward(x: Tensor): Tensor {
    return conv1d(x, this.weight, this.bias, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
    });
  }
}

/** Transposed 2-d convolution (SAM's mask upscaling: kernel 2, stride 2). Weight [Cin, Cout/groups, kh, kw]. */
export class ConvTranspose2d extends Module {
  weight: Tensor;
  bias: Tensor | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly outputPadding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: IntPair,
    opts: ConvTranspose2dLayerOptions = {},
  ) {
    super();
    const {
      stride = 1,
      padding = 0,
      outputPadding = 0,
      dilation = 1,
      groups = 1,
      bias = true,
      generator = defaultGenerator,
    } = opts;
    checkGroups('ConvTranspose2d', inChannels, outChannels, groups);
    this.kernelSize = pair(kernelSize);
    [this.stride, this.padding, this.outputPadding, this.dilation, this.groups] = [
      pair(stride),
      pair(padding),
      pair(outputPadding),
      pair(dilation),
      groups,
    ];
    [this.weight, this.bias] = convParams(
      [inChannels, outChannels / groups, ...this.kernelSize],
      bias ? outChannels : null,
      generator,
    );
  }

  /**
   * [N, Cin, H, W] -> [N, Cout, OH, OW]. `outputSize` ([OH, OW], or a full shape whose last two
   * dims are used) picks the output padding as PyTorch's ConvTranspose2d.forward(x, output_size).
   */
  forward(x: Tensor, outputSize?: readonly number[]): Tensor {
    const outputPadding = outputSize ? this.outputPaddingFor(x, outputSize) : this.outputPadding;
    return convTranspose2d(x, this.weight, this.bias, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
      outputPadding,
    });
  }

  private outputPaddingFor(x: Tensor, outputSize: readonly number[]): [number, number] {
    if (x.ndim !== 4 || outputSize.length < 2)
      throw new Error(
        `ConvTranspose2d: expected input [N, C, H, W] and output_size [OH, OW], got ${fmt(x.shape)} ` +
          `and ${fmt(outputSize)}`,
      );
    const size = outputSize.slice(-2);
    return [0, 1].map((i) => {
      const min =
        (x.shape[2 + i] - 1) * this.stride[i] - 2 * this.padding[i] + this.dilation[i] * (this.kernelSize[i] - 1) + 1;
      if (size[i] < min || size[i] >= min + this.stride[i]) {
        throw new Error(
          `ConvTranspose2d: requested output size ${fmt(size)} for input ${fmt(x.shape)}; dim ${i} ` +
            `must lie in [${min}, ${min + this.stride[i] - 1}]`,
        );
      }
      return size[i] - min;
    }) as [number, number];
  }
}

// ---- normalisation -------------------------------------------------------------------------

export interface BatchNormOptions {
  eps?: number;
  momentum?: number;
  affine?: boolean;
}

/** PyTorch's _BatchNorm: the dimension check is all BatchNorm1d and BatchNorm2d differ in. */
abstract class BatchNormBase extends Module {
  weight: Tensor | null;
  bias: Tensor | null;
  declare running_mean: Tensor;
  declare running_var: Tensor;
  declare num_batches_tracked: Tensor;
  readonly eps: number;
  readonly momentum: number;
  constructor(
    readonly numFeatures: number,
    opts: BatchNormOptions = {},
  ) {
    super();
    const { eps = 1e-5, momentum = 0.1, affine = true } = opts;
    if (typeof momentum !== 'number')
      throw new Error(
        `${this.constructor.name}: momentum must be a number (the cumulative average, momentum = ` +
          `None, is not supported)`,
      );
    [this.eps, this.momentum] = [eps, momentum];
    this.weight = affine ? parameter(ones([numFeatures])) : null;
    this.bias = affine ? parameter(zeros([numFeatures])) : null;
    this.registerBuffer('running_mean', zeros([numFeatures]));
    this.registerBuffer('running_var', ones([numFeatures]));
    this.registerBuffer('num_batches_tracked', tensor([0], [], 'i32'));
  }

  /** Whether x has an accepted rank, and the accepted shapes in words. */
  protected abstract rankOk(x: Tensor): boolean;
  protected abstract expected(c: number): string;

  /** Normalised x (same shape); in train mode also updates the running statistics. */
  forward(x: Tensor): Tensor {
    if (!this.rankOk(x) || x.shape[1] !== this.numFeatures) {
      throw new Error(
        `${this.constructor.name}: expected input ${this.expected(this.numFeatures)}, got ${fmt(x.shape)}`,
      );
    }
    if (this.training) {
      noGrad(() => {
        const one = tensor([1], [], 'i32');
        const next = add(this.num_batches_tracked, one);
        copy_(this.num_batches_tracked, next, this.constructor.name);
        one.dispose();
        next.dispose();
      });
    }
    return batchNorm(
      x,
      this.running_mean,
      this.running_var,
      this.weight,
      this.bias,
      this.training,
      this.momentum,
      this.eps,
    );
  }
}

export class BatchNorm1d extends BatchNormBase {
  protected rankOk(x: Tensor): boolean {
    return x.ndim === 2 || x.ndim === 3;
  }
  protected expected(c: number): string {
    return `[N, ${c}] or [N, ${c}, L]`;
  }
}

export class BatchNorm2d extends BatchNormBase {
  protected rankOk(x: Tensor): boolean {
    return x.ndim === 4;
  }
  protected expected(c: number): string {
    return `[N, ${c}, H, W]`;
  }
}

export interface GroupNormOptions {
  eps?: number;
  affine?: boolean;
}

export class GroupNorm extends Module {
  weight: Tensor | null;
  bias: Tensor | null;
  readonly eps: number;
  constructor(
    readonly numGroups: number,
    readonly numChannels: number,
    opts: GroupNormOptions = {},
  ) {
    super();
    const { eps = 1e-5, affine = true } = opts;
    if (!Number.isInteger(numGroups) || numGroups < 1 || numChannels % numGroups !== 0) {
      throw new Error(`GroupNorm: num_channels ${numChannels} must be divisible by num_groups ${numGroups}`);
    }
    this.eps = eps;
    this.weight = affine ? parameter(ones([numChannels])) : null;
    this.bias = affine ? parameter(zeros([numChannels])) : null;
  }

  /** [N, C, *] -> [N, C, *], statistics over each group of C/G channels and all positions. */
  forward(x: Tensor): Tensor {
    if (x.ndim < 2 || x.shape[1] !== this.numChannels)
      throw new Error(`GroupNorm: expected input [N, ${this.numChannels}, *], got ${fmt(x.shape)}`);
    return groupNorm(x, this.numGroups, this.weight, this.bias, this.eps);
  }
}

/** SAM's LayerNorm2d: per-pixel normalisation over channels of [N, C, H, W], weight ones, bias zeros. */
export class LayerNorm2d extends Module {
  weight: Tensor;
  bias: Tensor;
  constructor(
    readonly numChannels: number,
    readonly eps = 1e-6,
  ) {
    super();
    this.weight = parameter(ones([numChannels]));
    this.bias = parameter(zeros([numChannels]));
  }

  forward(x: Tensor): Tensor {
    if (x.ndim < 2 || x.shape[1] !== this.numChannels)
      throw new Error(`LayerNorm2d: expected input [N, ${this.numChannels}, H, W], got ${fmt(x.shape)}`);
    return layerNorm2d(x, this.weight, this.bias, this.eps);
  }
}
