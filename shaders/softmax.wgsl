// Softmax and log-softmax along one axis, numerically stable: with mx = max(x) and
// sum = sum(exp(x - mx)), {{FINISH}} prepares the row constant `k` from `ps[0]` (the sum) and
// {{Y}} writes the output: softmax y = exp(x - mx) * k (k = 1 / sum); log-softmax
// y = (x - mx) - k (k = log(sum); this order keeps small outputs exact for large |x|).
// Parallel decomposition: one workgroup of 64 lanes per row. Each lane strides over the row
// keeping an online (running max, sum of exp) pair (Milakov & Gimelshein 2018, "Online
// normalizer calculation for softmax"), so the row is read once for the statistics; the 64 pairs
// merge in a tree in workgroup memory; then every lane writes its share of the row. A row need
// not be contiguous: row r starts at (r / inner) * len * inner + r % inner and its elements are
// `inner` apart, so any axis works without a transpose.
struct U { rows: u32, len: u32, inner: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
var<workgroup> pm: array<f32, 64>;
var<workgroup> ps: array<f32, 64>;

// The lowest finite f32 (WGSL rejects infinities in constant expressions); exp(x - LOWEST) never
// runs with x finite because the max is always raised to a real element first.
const LOWEST = -3.4028234663852886e38;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= u.rows) { return; }
  let base = (row / u.inner) * u.len * u.inner + row % u.inner;
  var m = LOWEST;
  var s = 0.0;
  for (var j = lid.x; j < u.len; j += 64u) {
    let v = x[base + j * u.inner];
    if (v > m) { s = s * exp(m - v) + 1.0; m = v; } else { s += exp(v - m); }
  }
  pm[lid.x] = m;
  ps[lid.x] = s;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k >>= 1u) {
    if (lid.x < k) {
      let m2 = pm[lid.x + k];
      let mm = max(m, m2);
      s = s * exp(m - mm) + ps[lid.x + k] * exp(m2 - mm);
      m = mm;
      pm[lid.x] = m;
      ps[lid.x] = s;
    }
    workgroupBarrier();
  }
  let mx = pm[0];
  let k = {{FINISH}};
  for (var j = lid.x; j < u.len; j += 64u) {
    let i = base + j * u.inner;
    y[i] = {{Y}};
  }
}
