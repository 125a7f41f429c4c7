// Cross-entropy backward for class-index targets, with p = softmax(x) = exp(x - lse) and the
// row's upstream gradient g:
//   dx[c] = g * ((1 - ls) * w[t] * (p[c] - [c == t]) + ls / C * (p[c] * sum_w - w[c]))
// 0 on rows whose target is ignoreIndex, NaN on rows whose target is outside [0, C).
// Parallel decomposition: one thread per logit; the row reductions (lse, sum_w) were saved by
// the forward (cross-entropy.wgsl), so nothing here needs a reduction or a barrier.
struct U { n: u32, len: u32, inner: u32, hasWeight: u32, ignoreIndex: i32, smoothing: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> tgt: array<i32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>;
@group(0) @binding(5) var<storage, read> dloss: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;

fn classWeight(c: u32) -> f32 {
  if (u.hasWeight != 0u) { return weight[c]; }
  return 1.0;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  // [N, C, inner]: the element's class and its row (sample n, position s).
  let s = i % u.inner;
  let c = (i / u.inner) % u.len;
  let row = (i / (u.inner * u.len)) * u.inner + s;
  let t = tgt[row];
  if (t == u.ignoreIndex) {
    dx[i] = 0.0;
    return;
  }
  if (t < 0 || u32(t) >= u.len) {
    let nanBits = 0x7fc00000u;
    dx[i] = bitcast<f32>(nanBits);
    return;
  }
  let p = exp(x[i] - stats[2u * row]);
  let hot = select(0.0, 1.0, u32(t) == c);
  let d = (1.0 - u.smoothing) * classWeight(u32(t)) * (p - hot) + u.smoothing / f32(u.len) * (p * stats[2u * row + 1u] - classWeight(c));
  dx[i] = dloss[row] * d;
}
