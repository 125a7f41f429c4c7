// Softmax / log-softmax backward along one axis, one invocation per row (the workgroup-per-row
// kernel is softmax-backward.wgsl, with the same TERM / DX expressions): total = sum of {{TERM}}
// over the row, then dx = {{DX}}. No workgroup memory or barriers (see softmax-rows.wgsl).
struct U { rows: u32, len: u32, inner: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= u.rows) { return; }
  let base = (row / u.inner) * u.len * u.inner + row % u.inner;
  var total = 0.0;
  for (var j = 0u; j < u.len; j++) {
    let i = base + j * u.inner;
    total += {{TERM}};
  }
  for (var j = 0u; j < u.len; j++) {
    let i = base + j * u.inner;
    dx[i] = {{DX}};
  }
}
