// Cross-entropy with class-index targets, per row (one sample, or one position of [N, C, d...]):
//   loss = (1 - ls) * w[t] * (lse - x[t]) + ls / C * sum_c w[c] * (lse - x[c]),  lse = logsumexp(x)
// as torch.nn.functional.cross_entropy with label smoothing `ls` and class weights w (1 without).
// Writes the row's loss, its weight w[t] (the denominator of the 'mean' reduction) and the
// statistics (lse, sum_c w[c]) that cross-entropy-backward.wgsl reads. A row whose target is
// ignoreIndex gets loss 0 and weight 0; a target outside [0, C) gets NaN loss and NaN weight
// (no host sync can reject it here; validateIndices in losses.ts checks on the host).
// Parallel decomposition: one workgroup of 64 lanes per row. Lanes stride over the classes
// keeping an online (max, sum of exp) pair and the weighted sums for smoothing; the partials
// merge in a tree in workgroup memory, and lane 0 writes the row's results. Class c of row r is
// at (r / inner) * C * inner + c * inner + r % inner (class dim 1, as PyTorch).
struct U { rows: u32, len: u32, inner: u32, hasWeight: u32, ignoreIndex: i32, smoothing: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> tgt: array<i32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> rowWeight: array<f32>;
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;
var<workgroup> pm: array<f32, 64>;
var<workgroup> ps: array<f32, 64>;
var<workgroup> pwx: array<f32, 64>;
var<workgroup> pw: array<f32, 64>;

const LOWEST = -3.4028234663852886e38;

fn classWeight(c: u32) -> f32 {
  if (u.hasWeight != 0u) { return weight[c]; }
  return 1.0;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= u.rows) { return; }
  let base = (row / u.inner) * u.len * u.inner + row % u.inner;
  // Weighted sums are taken relative to the row's first logit x0 so that sum_c w[c] (lse - x[c])
  // does not cancel catastrophically when the logits are large.
  let x0 = x[base];
  var m = LOWEST;
  var s = 0.0;
  var swx = 0.0;
  var sw = 0.0;
  for (var c = lid.x; c < u.len; c += 64u) {
    let v = x[base + c * u.inner];
    if (v > m) { s = s * exp(m - v) + 1.0; m = v; } else { s += exp(v - m); }
    let w = classWeight(c);
    swx += w * (v - x0);
    sw += w;
  }
  pm[lid.x] = m;
  ps[lid.x] = s;
  pwx[lid.x] = swx;
  pw[lid.x] = sw;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k >>= 1u) {
    if (lid.x < k) {
      let m2 = pm[lid.x + k];
      let mm = max(m, m2);
      s = s * exp(m - mm) + ps[lid.x + k] * exp(m2 - mm);
      m = mm;
      pm[lid.x] = m;
      ps[lid.x] = s;
      pwx[lid.x] += pwx[lid.x + k];
      pw[lid.x] += pw[lid.x + k];
    }
    workgroupBarrier();
  }
  if (lid.x != 0u) { return; }
  let logSum = log(ps[0]);
  let lse = pm[0] + logSum;
  let t = tgt[row];
  let nanBits = 0x7fc00000u; // a runtime value: WGSL rejects NaN in constant expressions
  var l = 0.0;
  var wt = 0.0;
  if (t != u.ignoreIndex) {
    if (t < 0 || u32(t) >= u.len) {
      l = bitcast<f32>(nanBits);
      wt = l;
    } else {
      wt = classWeight(u32(t));
      let nll = wt * ((pm[0] - x[base + u32(t) * u.inner]) + logSum);
      let smoothSum = ((pm[0] - x0) + logSum) * pw[0] - pwx[0];
      l = (1.0 - u.smoothing) * nll + u.smoothing / f32(u.len) * smoothSum;
    }
  }
  loss[row] = l;
  rowWeight[row] = wt;
  stats[2u * row] = lse;
  stats[2u * row + 1u] = pw[0];
}
