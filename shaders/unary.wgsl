// Elementwise y = f(x) over a contiguous tensor. {{EXPR}} is an expression in `x`, `p0`, `p1`
// (op parameters such as pow's exponent or clamp's bounds); {{TI}}/{{TO}} are the dtypes, I and
// O their aliases. unary-vec4.wgsl is the same kernel four elements at a time.
alias I = {{TI}};
alias O = {{TO}};
struct U { n: u32, p0: f32, p1: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<I>;
@group(0) @binding(2) var<storage, read_write> out: array<O>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  let x = a[i];
  let p0 = u.p0;
  let p1 = u.p1;
  out[i] = {{EXPR}};
}

// WGSL has no erf: Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, at f32 resolution).
fn erf_f(x: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.3275911 * abs(x));
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-x * x);
  return select(-y, y, x >= 0.0);
}

// pow as PyTorch defines it for negative bases: finite for integral exponents, NaN otherwise.
fn pow_signed(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  let m = pow(abs(x), y);
  if (x >= 0.0) { return m; }
  let nanBits = 0x7fc00000u; // a runtime value: WGSL rejects NaN in constant expressions
  if (fract(y) != 0.0) { return bitcast<f32>(nanBits); }
  return select(m, -m, fract(y * 0.5) != 0.0);
}

fn gelu_tanh_grad(x: f32) -> f32 {
  let k = 0.7978845608028654;
  let t = tanh(k * (x + 0.044715 * x * x * x));
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x);
}
