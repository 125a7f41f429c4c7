// max_pool2d backward as a gather (deterministic, no atomics): one invocation per input element
// sums dy over the windows that contain it and chose it as their argmax.
// Window oy covers rows [oy*sh - ph, oy*sh - ph + kh), so row iy lies in windows
// ceil((iy + ph - kh + 1) / sh) ..= floor((iy + ph) / sh).
struct U { nc: u32, h: u32, w: u32, oh: u32, ow: u32, kh: u32, kw: u32, sh: u32, sw: u32, ph: i32, pw: i32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

// Windows [lo, hi] along one axis that contain position p.
fn windows(p: i32, pad: i32, k: u32, s: u32, n: u32) -> vec2i {
  let a = p + pad - i32(k) + 1;
  let lo = select(0, (a + i32(s) - 1) / i32(s), a > 0);
  let hi = min((p + pad) / i32(s), i32(n) - 1);
  return vec2i(lo, hi);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.nc * u.h * u.w) { return; }
  let ix = i32(i % u.w);
  let iy = i32((i / u.w) % u.h);
  let base = (i / (u.w * u.h)) * u.oh * u.ow;
  let wy = windows(iy, u.ph, u.kh, u.sh, u.oh);
  let wx = windows(ix, u.pw, u.kw, u.sw, u.ow);
  let me = iy * i32(u.w) + ix;
  var acc = 0.0;
  for (var oy = wy.x; oy <= wy.y; oy++) {
    for (var ox = wx.x; ox <= wx.y; ox++) {
      let o = base + u32(oy) * u.ow + u32(ox);
      if (idx[o] == me) { acc += dy[o]; }
    }
  }
  dx[i] = acc;
}
