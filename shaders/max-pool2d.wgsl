// max_pool2d forward (PyTorch semantics, ceil_mode false, dilation 1): one invocation per output.
// Windows start at (oy*sh - ph, ox*sw - pw), are clipped to the input (padding never wins), and
// keep the first maximum. Also writes the argmax as a flat index iy*W + ix within the plane
// (as PyTorch's return_indices), which the backward gathers on.
struct U { nc: u32, h: u32, w: u32, oh: u32, ow: u32, kh: u32, kw: u32, sh: u32, sw: u32, ph: i32, pw: i32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> idx: array<i32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.nc * u.oh * u.ow) { return; }
  let ox = i32(i % u.ow);
  let oy = i32((i / u.ow) % u.oh);
  let base = (i / (u.ow * u.oh)) * u.h * u.w;
  let y0 = max(oy * i32(u.sh) - u.ph, 0);
  let y1 = min(oy * i32(u.sh) - u.ph + i32(u.kh), i32(u.h));
  let x0 = max(ox * i32(u.sw) - u.pw, 0);
  let x1 = min(ox * i32(u.sw) - u.pw + i32(u.kw), i32(u.w));
  var best = -3.4028234663852886e38;
  var arg = y0 * i32(u.w) + x0;
  var first = true;
  for (var iy = y0; iy < y1; iy++) {
    for (var ix = x0; ix < x1; ix++) {
      let v = x[base + u32(iy * i32(u.w) + ix)];
      if (first || v > best) { best = v; arg = iy * i32(u.w) + ix; first = false; }
    }
  }
  out[i] = best;
  idx[i] = arg;
}
