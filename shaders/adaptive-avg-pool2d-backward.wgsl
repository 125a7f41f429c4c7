// adaptive_avg_pool2d backward as a gather (deterministic): input row i lies in output cells
// floor(i*OH/H) ..= ceil((i+1)*OH/H) - 1 (the inverse of the forward's start/end formula); each
// contributes dy / its cell size. One invocation per input element.
struct U { nc: u32, h: u32, w: u32, oh: u32, ow: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

fn cell(o: u32, n: u32, on: u32) -> u32 {
  return ((o + 1u) * n + on - 1u) / on - o * n / on;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.nc * u.h * u.w) { return; }
  let ix = i % u.w;
  let iy = (i / u.w) % u.h;
  let base = (i / (u.w * u.h)) * u.oh * u.ow;
  let oy1 = ((iy + 1u) * u.oh + u.h - 1u) / u.h;
  let ox1 = ((ix + 1u) * u.ow + u.w - 1u) / u.w;
  var acc = 0.0;
  for (var oy = iy * u.oh / u.h; oy < oy1; oy++) {
    let ch = cell(oy, u.h, u.oh);
    for (var ox = ix * u.ow / u.w; ox < ox1; ox++) {
      acc += dy[base + oy * u.ow + ox] / f32(ch * cell(ox, u.w, u.ow));
    }
  }
  dx[i] = acc;
}
