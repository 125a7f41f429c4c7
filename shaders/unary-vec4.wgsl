// Elementwise y = f(x) over a contiguous tensor whose size is a multiple of 4, four elements per
// invocation (unary.wgsl is the scalar kernel; the op table's expressions serve both). {{TI}} and
// {{TO}} are vec4 types, aliased I and O; p0, p1 are f32 parameters. The helpers below are the
// vec4 twins of unary.wgsl's.
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
fn erf_f(x: vec4<f32>) -> vec4<f32> {
  let t = 1.0 / (1.0 + 0.3275911 * abs(x));
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-x * x);
  return select(-y, y, x >= vec4<f32>(0.0));
}

// pow as PyTorch defines it for negative bases: finite for integral exponents, NaN otherwise.
fn pow_signed(x: vec4<f32>, y: f32) -> vec4<f32> {
  if (y == 0.0) { return vec4<f32>(1.0); }
  let m = pow(abs(x), vec4<f32>(y));
  let nanBits = 0x7fc00000u; // a runtime value: WGSL rejects NaN in constant expressions
  let odd = select(m, -m, fract(y * 0.5) != 0.0);
  let neg = select(odd, vec4<f32>(bitcast<f32>(nanBits)), fract(y) != 0.0);
  return select(neg, m, x >= vec4<f32>(0.0));
}

fn gelu_tanh_grad(x: vec4<f32>) -> vec4<f32> {
  let k = 0.7978845608028654;
  let t = tanh(k * (x + 0.044715 * x * x * x));
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x);
}
