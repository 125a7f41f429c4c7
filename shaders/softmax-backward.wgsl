// Softmax / log-softmax backward along one axis, from the forward's output y: the lanes sum
// {{TERM}} over the row into `total`, then write {{DX}}. Softmax: total = sum(dy * y),
// dx = y * (dy - total). Log-softmax: total = sum(dy), dx = dy - exp(y) * total.
// Parallel decomposition: one workgroup of 64 lanes per row (strided rows as in softmax.wgsl):
// the lanes reduce the sum through a tree in workgroup memory, then write dx.
struct U { rows: u32, len: u32, inner: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
var<workgroup> part: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= u.rows) { return; }
  let base = (row / u.inner) * u.len * u.inner + row % u.inner;
  var acc = 0.0;
  for (var j = lid.x; j < u.len; j += 64u) {
    let i = base + j * u.inner;
    acc += {{TERM}};
  }
  part[lid.x] = acc;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k >>= 1u) {
    if (lid.x < k) { part[lid.x] += part[lid.x + k]; }
    workgroupBarrier();
  }
  let total = part[0];
  for (var j = lid.x; j < u.len; j += 64u) {
    let i = base + j * u.inner;
    dx[i] = {{DX}};
  }
}
