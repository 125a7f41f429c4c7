// Elementwise out = f(x, y) with broadcasting: each input is read through strides over the
// output's shape (stride 0 on a broadcast dimension). {{EXPR}} is an expression in `x`, `y`.
alias O = {{TO}};
struct U { shape: array<vec4<u32>, 2>, sa: array<vec4<u32>, 2>, sb: array<vec4<u32>, 2>, n: u32, rank: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<{{TA}}>;
@group(0) @binding(2) var<storage, read> b: array<{{TB}}>;
@group(0) @binding(3) var<storage, read_write> out: array<{{TO}}>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  var rem = i;
  var ia = 0u;
  var ib = 0u;
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let s = u.shape[d / 4][d % 4];
    let c = rem % s;
    rem = rem / s;
    ia += c * u.sa[d / 4][d % 4];
    ib += c * u.sb[d / 4][d % 4];
  }
  let x = a[ia];
  let y = b[ib];
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
