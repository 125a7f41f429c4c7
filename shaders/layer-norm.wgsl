// Layer norm forward over contiguous rows of `len` elements:
//   y = (x - mean) * rstd * weight + bias,  rstd = 1 / sqrt(var + eps)  (biased variance),
// also writing mean and rstd per row for the backward.
// Parallel decomposition: one workgroup of 64 lanes per row. Each lane runs Welford's update over
// its strided share of the row (one read of x for both moments, no catastrophic cancellation);
// the 64 (count, mean, M2) triples merge in a tree in workgroup memory with Chan et al.'s
// pairwise formula; then the lanes write y. weight and bias are optional: when a flag is 0 the
// binding holds a stand-in buffer that is never read.
struct U { rows: u32, len: u32, hasWeight: u32, hasBias: u32, eps: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> meanOut: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstdOut: array<f32>;
var<workgroup> pn: array<f32, 64>;
var<workgroup> pmean: array<f32, 64>;
var<workgroup> pm2: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= u.rows) { return; }
  let base = row * u.len;
  var n = 0.0;
  var mean = 0.0;
  var m2 = 0.0;
  for (var j = lid.x; j < u.len; j += 64u) {
    let v = x[base + j];
    n += 1.0;
    let d = v - mean;
    mean += d / n;
    m2 += d * (v - mean);
  }
  pn[lid.x] = n;
  pmean[lid.x] = mean;
  pm2[lid.x] = m2;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k >>= 1u) {
    if (lid.x < k) {
      let nb = pn[lid.x + k];
      let tot = n + nb;
      if (nb > 0.0) {
        let d = pmean[lid.x + k] - mean;
        mean += d * nb / tot;
        m2 += pm2[lid.x + k] + d * d * n * nb / tot;
        n = tot;
      }
      pn[lid.x] = n;
      pmean[lid.x] = mean;
      pm2[lid.x] = m2;
    }
    workgroupBarrier();
  }
  let mu = pmean[0];
  let rstd = inverseSqrt(pm2[0] / f32(u.len) + u.eps);
  for (var j = lid.x; j < u.len; j += 64u) {
    var v = (x[base + j] - mu) * rstd;
    if (u.hasWeight != 0u) { v *= weight[j]; }
    if (u.hasBias != 0u) { v += bias[j]; }
    y[base + j] = v;
  }
  if (lid.x == 0u) {
    meanOut[row] = mu;
    rstdOut[row] = rstd;
  }
}
