// Nearest interpolation backward as a gather (deterministic): the outputs that read input i
// along an axis form the range where source(o) == i (source is non-decreasing in o), found by
// binary search with the forward's arithmetic; one invocation per input element sums dy there.
struct U { nc: u32, h: u32, w: u32, oh: u32, ow: u32, align: u32, sh: f32, sw: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

fn source(o: u32, scale: f32, n: u32) -> u32 { return min(u32(floor(f32(o) * scale)), n - 1u); }

// The first output o in [0, on) with source(o) >= t (on if none).
fn lowerBound(t: u32, scale: f32, n: u32, on: u32) -> u32 {
  var lo = 0u;
  var hi = on;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (source(mid, scale, n) < t) { lo = mid + 1u; } else { hi = mid; }
  }
  return lo;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.nc * u.h * u.w) { return; }
  let ix = i % u.w;
  let iy = (i / u.w) % u.h;
  let base = (i / (u.w * u.h)) * u.oh * u.ow;
  let oy1 = lowerBound(iy + 1u, u.sh, u.h, u.oh);
  let ox0 = lowerBound(ix, u.sw, u.w, u.ow);
  let ox1 = lowerBound(ix + 1u, u.sw, u.w, u.ow);
  var acc = 0.0;
  for (var oy = lowerBound(iy, u.sh, u.h, u.oh); oy < oy1; oy++) {
    for (var ox = ox0; ox < ox1; ox++) { acc += dy[base + oy * u.ow + ox]; }
  }
  dx[i] = acc;
}
