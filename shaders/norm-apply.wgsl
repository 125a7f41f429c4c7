// Normalisation, apply: y = (x - mean[g]) * rstd[g] * weight[c] + bias[c] over x viewed as
// [N, C, S]. The statistics group of element (n, c, s) is
//   g = n * gN + (c / cpg) * gC + s * gS
// (batch norm: g = c; group norm: g = n * G + c / (C / G); layer norm 2d: g = n * S + s).
// flags: bit 0 weight, bit 1 bias, bit 2 `second` holds a variance (rstd computed here, eval
// batch norm's running_var) instead of rstd.
struct U { c: u32, s: u32, total: u32, gN: u32, cpg: u32, gC: u32, gS: u32, flags: u32, eps: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> second: array<f32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.total) { return; }
  let s = i % u.s;
  let c = (i / u.s) % u.c;
  let n = i / (u.s * u.c);
  let g = n * u.gN + (c / u.cpg) * u.gC + s * u.gS;
  var r = second[g];
  if ((u.flags & 4u) != 0u) { r = inverseSqrt(r + u.eps); }
  var v = (x[i] - mean[g]) * r;
  if ((u.flags & 1u) != 0u) { v *= weight[c]; }
  if ((u.flags & 2u) != 0u) { v += bias[c]; }
  y[i] = v;
}
