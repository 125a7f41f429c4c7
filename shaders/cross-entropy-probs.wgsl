// Cross-entropy with class-probability targets p (the logits' shape), per row:
//   q = (1 - ls) * p + ls / C,   loss = -sum_c w[c] * q[c] * (x[c] - lse) = lse * A - B
// with A = sum_c w[c] q[c], B = sum_c w[c] q[c] x[c], lse = logsumexp(x), as
// torch.nn.functional.cross_entropy with probability targets, label smoothing `ls` and class
// weights w (1 without). Writes the row's loss and the statistics (lse, A) that
// cross-entropy-probs-backward.wgsl reads.
// Parallel decomposition: one workgroup of 64 lanes per row. Lanes stride over the classes
// keeping an online (max, sum of exp) pair and the sums A, B; the partials merge in a tree in
// workgroup memory, and lane 0 writes the row's results. Class c of row r is at
// (r / inner) * C * inner + c * inner + r % inner (class dim 1, as PyTorch).
struct U { rows: u32, len: u32, inner: u32, hasWeight: u32, smoothing: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> tgt: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
var<workgroup> pm: array<f32, 64>;
var<workgroup> ps: array<f32, 64>;
var<workgroup> pa: array<f32, 64>;
var<workgroup> pb: array<f32, 64>;

const LOWEST = -3.4028234663852886e38;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= u.rows) { return; }
  let base = (row / u.inner) * u.len * u.inner + row % u.inner;
  // B is taken relative to the row's first logit x0 (loss = A ((max - x0) + log sum) - B') so
  // that lse * A - B does not cancel catastrophically when the logits are large.
  let x0 = x[base];
  var m = LOWEST;
  var s = 0.0;
  var a = 0.0;
  var b = 0.0;
  for (var c = lid.x; c < u.len; c += 64u) {
    let i = base + c * u.inner;
    let v = x[i];
    if (v > m) { s = s * exp(m - v) + 1.0; m = v; } else { s += exp(v - m); }
    var wq = (1.0 - u.smoothing) * tgt[i] + u.smoothing / f32(u.len);
    if (u.hasWeight != 0u) { wq *= weight[c]; }
    a += wq;
    b += wq * (v - x0);
  }
  pm[lid.x] = m;
  ps[lid.x] = s;
  pa[lid.x] = a;
  pb[lid.x] = b;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k >>= 1u) {
    if (lid.x < k) {
      let m2 = pm[lid.x + k];
      let mm = max(m, m2);
      s = s * exp(m - mm) + ps[lid.x + k] * exp(m2 - mm);
      m = mm;
      pm[lid.x] = m;
      ps[lid.x] = s;
      pa[lid.x] += pa[lid.x + k];
      pb[lid.x] += pb[lid.x + k];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    let logSum = log(ps[0]);
    loss[row] = ((pm[0] - x0) + logSum) * pa[0] - pb[0];
    stats[2u * row] = pm[0] + logSum;
    stats[2u * row + 1u] = pa[0];
  }
}
