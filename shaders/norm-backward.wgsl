// Normalisation backward, dx over x viewed as [N, C, S] (groups mapped as in norm-apply.wgsl):
//   batch statistics (flags bit 3):  dx = rstd * (dy * w - (sa[g] + xhat * sb[g]) / count)
//   fixed statistics (eval batch norm): dx = rstd * dy * w
// where sa = sum(dy * w), sb = sum(dy * w * xhat) over the group (sums[g], sums[groups + g])
// and w = weight[c] (bit 0) or 1. bit 4: the sums were taken without w (batch norm, whose
// group is the channel) and are scaled by w[c] here. bit 2: `second` holds a variance.
struct U { c: u32, s: u32, total: u32, gN: u32, cpg: u32, gC: u32, gS: u32, flags: u32, groups: u32, count: f32, eps: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> second: array<f32>;
@group(0) @binding(5) var<storage, read> weight: array<f32>;
@group(0) @binding(6) var<storage, read> sums: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.total) { return; }
  let s = i % u.s;
  let c = (i / u.s) % u.c;
  let n = i / (u.s * u.c);
  let g = n * u.gN + (c / u.cpg) * u.gC + s * u.gS;
  var r = second[g];
  if ((u.flags & 4u) != 0u) { r = inverseSqrt(r + u.eps); }
  var w = 1.0;
  if ((u.flags & 1u) != 0u) { w = weight[c]; }
  var gx = dy[i] * w;
  if ((u.flags & 8u) != 0u) {
    var sa = sums[g];
    var sb = sums[u.groups + g];
    if ((u.flags & 16u) != 0u) { sa *= w; sb *= w; }
    gx -= (sa + (x[i] - mean[g]) * r * sb) / u.count;
  }
  dx[i] = gx * r;
}
