// Softmax and log-softmax along one axis, one invocation per row (the workgroup-per-row kernel is
// softmax.wgsl, with the same FINISH / Y expressions and strided rows; the choice is in
// engine/ops/softmax.ts): the row's max, then sum = sum(exp(x - max)) into ps[0], then the
// output. No workgroup memory or barriers: on CPU drivers the 64-lane tree (seven barriers per
// row) cost more than the arithmetic on attention rows of 49-257 scores.
struct U { rows: u32, len: u32, inner: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= u.rows) { return; }
  let base = (row / u.inner) * u.len * u.inner + row % u.inner;
  var mx = x[base];
  for (var j = 1u; j < u.len; j++) { mx = max(mx, x[base + j * u.inner]); }
  var ps: array<f32, 1>;
  for (var j = 0u; j < u.len; j++) { ps[0] += exp(x[base + j * u.inner] - mx); }
  let k = {{FINISH}};
  for (var j = 0u; j < u.len; j++) {
    let i = base + j * u.inner;
    y[i] = {{Y}};
  }
}
