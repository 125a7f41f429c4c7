// Normalisation backward, reductions: for each (group, chunk) of a reduction grouping
// (addressed as in norm-stats.wgsl), the partial sums of a = dy * w and b = dy * w * xhat,
// where xhat = (x - mean[g']) * rstd[g'] uses the statistics group g' of each element (mapped as
// in norm-apply.wgsl) and w = weight[c] (flags bit 0) or 1. Written planar:
// part[id] = a, part[groups * chunks + id] = b, so summing the chunk axis gives [2, groups].
// With the statistics grouping this gives the sums dx needs; with the per-channel grouping and
// w = 1 it gives bias and weight gradients. flags bit 2: `second` holds a variance.
struct U {
  groups: u32, count: u32, chunks: u32, chunkLen: u32, gInner: u32, gOuterStride: u32, gInnerStride: u32, inner: u32, outerStride: u32, innerStride: u32,
  c: u32, s: u32, gN: u32, cpg: u32, gC: u32, gS: u32, flags: u32, eps: f32,
}
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> second: array<f32>;
@group(0) @binding(5) var<storage, read> weight: array<f32>;
@group(0) @binding(6) var<storage, read_write> part: array<f32>;

var<workgroup> wa: array<f32, 64>;
var<workgroup> wb: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = wid.x + wid.y * nwg.x;
  if (id >= u.groups * u.chunks) { return; }
  let grp = id / u.chunks;
  let start = (id % u.chunks) * u.chunkLen;
  let end = min(u.count, start + u.chunkLen);
  let base = (grp / u.gInner) * u.gOuterStride + (grp % u.gInner) * u.gInnerStride;
  var a = 0.0;
  var b = 0.0;
  for (var j = start + lid.x; j < end; j += 64u) {
    let off = base + (j / u.inner) * u.outerStride + (j % u.inner) * u.innerStride;
    let s = off % u.s;
    let c = (off / u.s) % u.c;
    let n = off / (u.s * u.c);
    let g = n * u.gN + (c / u.cpg) * u.gC + s * u.gS;
    var r = second[g];
    if ((u.flags & 4u) != 0u) { r = inverseSqrt(r + u.eps); }
    var gy = dy[off];
    if ((u.flags & 1u) != 0u) { gy *= weight[c]; }
    a += gy;
    b += gy * (x[off] - mean[g]) * r;
  }
  wa[lid.x] = a;
  wb[lid.x] = b;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (lid.x < s) {
      wa[lid.x] += wa[lid.x + s];
      wb[lid.x] += wb[lid.x + s];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    part[id] = wa[0];
    part[u.groups * u.chunks + id] = wb[0];
  }
}
