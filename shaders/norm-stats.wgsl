// Normalisation statistics, pass 1 (batch_norm, group_norm, layer_norm2d): one workgroup per
// (group, chunk) runs Welford's update over its slice of the group's elements, then merges the
// 64 lanes pairwise (Chan, Golub & LeVeque 1979), writing (count, mean, M2) to part[3 * wg].
// Element j of group g sits at
//   (g / gInner) * gOuterStride + (g % gInner) * gInnerStride + (j / inner) * outerStride + (j % inner) * innerStride,
// which covers a channel of [N, C, S] (batch norm), a contiguous block (group norm) and the
// channel column of one pixel (layer norm 2d).
struct U { groups: u32, count: u32, chunks: u32, chunkLen: u32, gInner: u32, gOuterStride: u32, gInnerStride: u32, inner: u32, outerStride: u32, innerStride: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;

var<workgroup> wn: array<f32, 64>;
var<workgroup> wmean: array<f32, 64>;
var<workgroup> wm2: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = wid.x + wid.y * nwg.x;
  if (id >= u.groups * u.chunks) { return; }
  let g = id / u.chunks;
  let start = (id % u.chunks) * u.chunkLen;
  let end = min(u.count, start + u.chunkLen);
  let base = (g / u.gInner) * u.gOuterStride + (g % u.gInner) * u.gInnerStride;
  var n = 0.0;
  var mean = 0.0;
  var m2 = 0.0;
  for (var j = start + lid.x; j < end; j += 64u) {
    let v = x[base + (j / u.inner) * u.outerStride + (j % u.inner) * u.innerStride];
    n += 1.0;
    let d = v - mean;
    mean += d / n;
    m2 += d * (v - mean);
  }
  wn[lid.x] = n;
  wmean[lid.x] = mean;
  wm2[lid.x] = m2;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (lid.x < s) {
      let na = wn[lid.x];
      let nb = wn[lid.x + s];
      let nt = na + nb;
      if (nb > 0.0) {
        let d = wmean[lid.x + s] - wmean[lid.x];
        wmean[lid.x] += d * nb / nt;
        wm2[lid.x] += wm2[lid.x + s] + d * d * na * nb / nt;
        wn[lid.x] = nt;
      }
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    part[3u * id] = wn[0];
    part[3u * id + 1u] = wmean[0];
    part[3u * id + 2u] = wm2[0];
  }
}
