// Parameter initialisers with PyTorch's semantics (torch.nn.init): each `name(shape, opts)`
// returns a new tensor drawn on the device from a seeded Generator (engine/ops/creation.ts), and
// each `name_(t, opts)` fills an existing tensor in place (a parameter stays where it lives, e.g.
// in a flat buffer window). Fan conventions as torch.nn.init._calculate_fan_in_and_fan_out:
// fan_in = size(1) * receptive field, fan_out = size(0) * receptive field, where the receptive
// field is the product of dims 2.. (conv weights [out, in/groups, kh, kw]).
//
// Truncated normal (trunc_normal_(mean, std, a, b), a and b absolute bounds): inverse-CDF
// sampling, as PyTorch does it: u ~ U(2Φ(α)-1, 2Φ(β)-1) with α = (a-mean)/std, β = (b-mean)/std,
// then x = mean + std·√2·erfinv(u), clamped to [a, b]. Exact (no rejection loop, no readback);
// erfinv is Giles' single-precision polynomial ("Approximating the erfinv function", GPU Computing
// Gems Jade, 2011; relative error ~1e-7), composed from elementwise ops.
import { Tensor, fmt, noGrad, tidy, type Shape } from '../tensor.ts';
import { defaultGenerator, full, type Generator } from '../ops/creation.ts';
import { add, clamp, log, lt, mul, sqrt, sub, where } from '../ops/math.ts';
import { copy_ } from '../flat.ts';

export type Nonlinearity =
  'linear' | 'conv1d' | 'conv2d' | 'conv3d' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';
export type FanMode = 'fan_in' | 'fan_out';
interface Gen {
  generator?: Generator;
}

export function calculateFanInAndFanOut(shape: Shape): [number, number] {
  if (shape.length < 2)
    throw new Error(`init: fan in and fan out cannot be computed for a tensor with fewer than 2 dims ${fmt(shape)}`);
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return [shape[1] * receptive, shape[0] * receptive];
}

/** The recommended gain for a nonlinearity (torch.nn.init.calculate_gain). */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear':
    case 'conv1d':
    case 'conv2d':
    case 'conv3d':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case 'selu':
      return 3 / 4;
  }
}

// ---- new tensors ---------------------------------------------------------------------------

export function uniform(shape: Shape, a = 0, b = 1, opts: Gen = {}): Tensor {
  return (opts.generator ?? defaultGenerator).uniform(shape, a, b);
}

export function normal(shape: Shape, mean = 0, std = 1, opts: Gen = {}): Tensor {
  return (opts.generator ?? defaultGenerator).normal(shape, mean, std);
}

export function constant(shape: Shape, value: number): Tensor {
  return full(shape, value);
}
export function zeros(shape: Shape): Tensor {
  return full(shape, 0);
}
export function ones(shape: Shape): Tensor {
  return full(shape, 1);
}

export interface TruncNormalOptions extends Gen {
  mean?: number;
  std?: number;
  a?: number;
  b?: number;
}

export function truncNormal(shape: Shape, opts: TruncNormalOptions = {}): Tensor {
  const { mean = 0, std = 1, a = -2, b = 2, generator = defaultGenerator } = opts;
  if (!(std > 0) || !(a < b)) throw new Error(`truncNormal: need std > 0 and a < b, got std ${std}, a ${a}, b ${b}`);
  return noGrad(() =>
    tidy(() => {
      const lo = 2 * normCdf((a - mean) / std) - 1;
      const hi = 2 * normCdf((b - mean) / std) - 1;
      // Keep u strictly inside (-1, 1): erfinv(±1) is infinite.
      const u = clamp(generator.uniform(shape, lo, hi), -0.99999994, 0.99999994);
      return clamp(add(mul(erfinv(u), std * Math.SQRT2), mean), a, b);
    }),
  );
}

export interface XavierOptions extends Gen {
  gain?: number;
}

export function xavierUniform(shape: Shape, opts: XavierOptions = {}): Tensor {
  const [fanIn, fanOut] = calculateFanInAndFanOut(shape);
  const bound = Math.sqrt(3) * (opts.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut));
  return uniform(shape, -bound, bound, opts);
}

export function xavierNormal(shape: Shape, opts: XavierOptions = {}): Tensor {
  const [fanIn, fanOut] = calculateFanInAndFanOut(shape);
  return normal(shape, 0, (opts.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut)), opts);
}

/** PyTorch defaults: a = 0, mode 'fan_in', nonlinearity 'leaky_relu' (a is its negative slope). */
export interface KaimingOptions extends Gen {
  a?: number;
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
}

function kaimingStd(shape: Shape, opts: KaimingOptions): number {
  const { a = 0, mode = 'fan_in', nonlinearity = 'leaky_relu' } = opts;
  const [fanIn, fanOut] = calculateFanInAndFanOut(shape);
  const fan = mode === 'fan_in' ? fanIn : fanOut;
  if (fan === 0) throw new Error(`kaiming init: ${mode} is 0 for shape ${fmt(shape)}`);
  return calculateGain(nonlinearity, a) / Math.sqrt(fan);
}

export function kaimingUniform(shape: Shape, opts: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(shape, opts);
  return uniform(shape, -bound, bound, opts);
}

export function kaimingNormal(shape: Shape, opts: KaimingOptions = {}): Tensor {
  return normal(shape, 0, kaimingStd(shape, opts), opts);
}

// ---- in place ------------------------------------------------------------------------------

function fill_(t: Tensor, make: (shape: Shape) => Tensor): Tensor {
  noGrad(() => {
    const v = make(t.shape);
    copy_(t, v, 'init');
    v.dispose();
  });
  return t;
}

export const uniform_ = (t: Tensor, a = 0, b = 1, opts: Gen = {}): Tensor => fill_(t, (s) => uniform(s, a, b, opts));
export const normal_ = (t: Tensor, mean = 0, std = 1, opts: Gen = {}): Tensor =>
  fill_(t, (s) => normal(s, mean, std, opts));
export const constant_ = (t: Tensor, value: number): Tensor => fill_(t, (s) => constant(s, value));
export const zeros_ = (t: Tensor): Tensor => constant_(t, 0);
export const ones_ = (t: Tensor): Tensor => constant_(t, 1);
export const truncNormal_ = (t: Tensor, opts: TruncNormalOptions = {}): Tensor => fill_(t, (s) => truncNormal(s, opts));
export const xavierUniform_ = (t: Tensor, opts: XavierOptions = {}): Tensor => fill_(t, (s) => xavierUniform(s, opts));
export const xavierNormal_ = (t: Tensor, opts: XavierOptions = {}): Tensor => fill_(t, (s) => xavierNormal(s, opts));
export const kaimingUniform_ = (t: Tensor, opts: KaimingOptions = {}): Tensor =>
  fill_(t, (s) => kaimingUniform(s, opts));
export const kaimingNormal_ = (t: Tensor, opts: KaimingOptions = {}): Tensor => fill_(t, (s) => kaimingNormal(s, opts));

// ---- helpers -------------------------------------------------------------------------------

// Giles' coefficients: w = -log((1-x)(1+x)); w < 5: p(w - 2.5), else q(sqrt(w) - 3); erfinv = p·x.
const CENTRAL = [
  2.81022636e-8, 3.43273939e-7, -3.5233877e-6, -4.39150654e-6, 0.00021858087, -0.00125372503, -0.00417768164,
  0.246640727, 1.50140941,
];
const TAIL = [
  -0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613, 0.00943887047,
  1.00167406, 2.83297682,
];

function horner(w: Tensor, coeffs: readonly number[]): Tensor {
  let p = add(mul(w, coeffs[0]), coeffs[1]);
  for (const c of coeffs.slice(2)) p = add(mul(p, w), c);
  return p;
}

/** erfinv on the device, |x| < 1 (composite; used by truncNormal). */
export function erfinv(x: Tensor): Tensor {
  return tidy(() => {
    const w = mul(log(mul(sub(1, x), add(x, 1))), -1);
    const central = horner(add(w, -2.5), CENTRAL);
    const tail = horner(add(sqrt(w), -3), TAIL);
    return mul(where(lt(w, 5), central, tail), x);
  });
}

/** Standard normal CDF in double precision (erf by Abramowitz & Stegun 7.1.26, |error| < 1.5e-7). */
export function normCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const erf =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-z * z);
  return 0.5 * (1 + (x >= 0 ? erf : -erf));
}
