// Elementwise out = f(x, y) where each operand is either contiguous with the output's shape or a
// single value: no index arithmetic at all (the general kernel, binary.wgsl, pays an integer
// divide and modulo per dimension per element, which CPU drivers execute lane by lane).
// {{TO}} is a vec4 when the size is a multiple of 4, else a scalar; {{XA}}/{{XB}} load an
// operand: `a[i]`, or a splat of `a[0]`. {{EXPR}} is an expression in `x`, `y` (O is the output
// type, so `O(1.0)` is a 1 of the right width).
alias O = {{TO}};
struct U { n: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<{{TA}}>;
@group(0) @binding(2) var<storage, read> b: array<{{TB}}>;
@group(0) @binding(3) var<storage, read_write> out: array<O>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  let x = {{XA}};
  let y = {{XB}};
  out[i] = {{EXPR}};
}

// pow as PyTorch defines it for negative bases: finite for integral exponents, NaN otherwise
// (scalar only: pow never takes the vec4 variant).
fn pow_signed(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  let m = pow(abs(x), y);
  if (x >= 0.0) { return m; }
  let nanBits = 0x7fc00000u; // a runtime value: WGSL rejects NaN in constant expressions
  if (fract(y) != 0.0) { return bitcast<f32>(nanBits); }
  return select(m, -m, fract(y * 0.5) != 0.0);
}
