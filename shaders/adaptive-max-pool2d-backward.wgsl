// adaptive_max_pool2d backward as a gather (deterministic): one invocation per input element
// sums dy over the output cells that contain it (rows floor(i*OH/H) ..= ceil((i+1)*OH/H) - 1,
// likewise columns) and chose it as their argmax.
struct U { nc: u32, h: u32, w: u32, oh: u32, ow: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.nc * u.h * u.w) { return; }
  let ix = i % u.w;
  let iy = (i / u.w) % u.h;
  let base = (i / (u.w * u.h)) * u.oh * u.ow;
  let me = i32(iy * u.w + ix);
  let oy1 = ((iy + 1u) * u.oh + u.h - 1u) / u.h;
  let ox1 = ((ix + 1u) * u.ow + u.w - 1u) / u.w;
  var acc = 0.0;
  for (var oy = iy * u.oh / u.h; oy < oy1; oy++) {
    for (var ox = ix * u.ow / u.w; ox < ox1; ox++) {
      let o = base + oy * u.ow + ox;
      if (idx[o] == me) { acc += dy[o]; }
    }
  }
  dx[i] = acc;
}
