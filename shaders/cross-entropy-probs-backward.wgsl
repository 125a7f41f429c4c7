// Cross-entropy backward for probability targets, with p = softmax(x) = exp(x - lse),
// q = (1 - ls) * target + ls / C, A = sum_c w[c] q[c] (saved by the forward) and the row's
// upstream gradient g:
//   dx[c] = g * (A * p[c] - w[c] * q[c])
// Parallel decomposition: one thread per logit; the row reductions were saved by the forward
// (cross-entropy-probs.wgsl), so nothing here needs a reduction or a barrier.
struct U { n: u32, len: u32, inner: u32, hasWeight: u32, smoothing: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> tgt: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>;
@group(0) @binding(5) var<storage, read> dloss: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  // [N, C, inner]: the element's class and its row (sample n, position s).
  let c = (i / u.inner) % u.len;
  let row = (i / (u.inner * u.len)) * u.inner + i % u.inner;
  var wq = (1.0 - u.smoothing) * tgt[i] + u.smoothing / f32(u.len);
  if (u.hasWeight != 0u) { wq *= weight[c]; }
  let p = exp(x[i] - stats[2u * row]);
  dx[i] = dloss[row] * (stats[2u * row + 1u] * p - wq);
}
