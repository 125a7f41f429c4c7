// Bilinear interpolation backward as a gather (deterministic, no atomics): one invocation per
// input element. Along each axis i0(o) is non-decreasing in o, so the outputs whose taps include
// input i (i0(o) == i or i0(o) + 1 == i) form one range, found by binary search with the same
// f32 arithmetic as the forward; each adds dy times its two per-axis tap weights.
struct U { nc: u32, h: u32, w: u32, oh: u32, ow: u32, align: u32, sh: f32, sw: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

fn taps(o: u32, scale: f32, n: u32) -> vec3f {
  var src = scale * f32(o);
  if (u.align == 0u) { src = max(scale * (f32(o) + 0.5) - 0.5, 0.0); }
  let i0 = min(u32(src), n - 1u);
  let i1 = min(i0 + 1u, n - 1u);
  return vec3f(f32(i0), f32(i1), clamp(src - f32(i0), 0.0, 1.0));
}

// The first output o in [0, on) with i0(o) >= t (on if none).
fn lowerBound(t: i32, scale: f32, n: u32, on: u32) -> u32 {
  var lo = 0u;
  var hi = on;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (i32(taps(mid, scale, n).x) < t) { lo = mid + 1u; } else { hi = mid; }
  }
  return lo;
}

// The weight with which output o reads input i along one axis.
fn weight(o: u32, i: u32, scale: f32, n: u32) -> f32 {
  let t = taps(o, scale, n);
  return select(0.0, 1.0 - t.z, u32(t.x) == i) + select(0.0, t.z, u32(t.y) == i);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.nc * u.h * u.w) { return; }
  let ix = i % u.w;
  let iy = (i / u.w) % u.h;
  let base = (i / (u.w * u.h)) * u.oh * u.ow;
  let oy0 = lowerBound(i32(iy) - 1, u.sh, u.h, u.oh);
  let oy1 = lowerBound(i32(iy) + 1, u.sh, u.h, u.oh);
  let ox0 = lowerBound(i32(ix) - 1, u.sw, u.w, u.ow);
  let ox1 = lowerBound(i32(ix) + 1, u.sw, u.w, u.ow);
  var acc = 0.0;
  for (var oy = oy0; oy < oy1; oy++) {
    let wy = weight(oy, iy, u.sh, u.h);
    if (wy == 0.0) { continue; }
    var row = 0.0;
    for (var ox = ox0; ox < ox1; ox++) { row += weight(ox, ix, u.sw, u.w) * dy[base + oy * u.ow + ox]; }
    acc += wy * row;
  }
  dx[i] = acc;
}
