// Layer norm forward, one invocation per row (the workgroup-per-row kernel is layer-norm.wgsl; the
// choice is in engine/ops/layer-norm.ts): rows of `len` = 4 * len4 elements read as vec4,
//   y = (x - mean) * rstd * weight + bias,  rstd = 1 / sqrt(var + eps)  (biased variance),
// with mean and rstd written per row for the backward. Two passes for the moments (the mean,
// then the centred squares: no cancellation), a third for y; a row of a few hundred values stays
// in cache. No workgroup memory or barriers: on CPU drivers the 64-lane tree of layer-norm.wgsl
// (seven barriers per row) cost more than the arithmetic for rows of 64-512 values.
struct U { rows: u32, len4: u32, hasWeight: u32, hasBias: u32, eps: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> meanOut: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstdOut: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= u.rows) { return; }
  let base = row * u.len4;
  let n = f32(4u * u.len4);
  var s = vec4<f32>(0.0);
  for (var j = 0u; j < u.len4; j++) { s += x[base + j]; }
  let mu = (s.x + s.y + s.z + s.w) / n;
  var q = vec4<f32>(0.0);
  for (var j = 0u; j < u.len4; j++) {
    let d = x[base + j] - mu;
    q += d * d;
  }
  let rstd = inverseSqrt((q.x + q.y + q.z + q.w) / n + u.eps);
  for (var j = 0u; j < u.len4; j++) {
    var v = (x[base + j] - mu) * rstd;
    if (u.hasWeight != 0u) { v *= weight[j]; }
    if (u.hasBias != 0u) { v += bias[j]; }
    y[base + j] = v;
  }
  meanOut[row] = mu;
  rstdOut[row] = rstd;
}
