// Layer norm backward for the input, one invocation per row of `len` = 4 * len4 elements read as
// vec4 (the workgroup-per-row kernel is layer-norm-backward.wgsl), with xhat = (x - mean) * rstd
// and g = dy * weight (dy without weight):
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
// One pass for the two sums, one to write dx; no workgroup memory or barriers (see
// layer-norm-rows.wgsl for why).
struct U { rows: u32, len4: u32, hasWeight: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> dx: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= u.rows) { return; }
  let base = row * u.len4;
  let mu = mean[row];
  let r = rstd[row];
  var sg = vec4<f32>(0.0);
  var sgx = vec4<f32>(0.0);
  for (var j = 0u; j < u.len4; j++) {
    var g = dy[base + j];
    if (u.hasWeight != 0u) { g *= weight[j]; }
    sg += g;
    sgx += g * (x[base + j] - mu) * r;
  }
  let inv = 1.0 / f32(4u * u.len4);
  let meanG = (sg.x + sg.y + sg.z + sg.w) * inv;
  let meanGx = (sgx.x + sgx.y + sgx.z + sgx.w) * inv;
  for (var j = 0u; j < u.len4; j++) {
    var g = dy[base + j];
    if (u.hasWeight != 0u) { g *= weight[j]; }
    let xhat = (x[base + j] - mu) * r;
    dx[base + j] = r * (g - meanG - xhat * meanGx);
  }
}
