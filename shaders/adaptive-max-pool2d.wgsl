// adaptive_max_pool2d forward: output cell (oy, ox) is the first maximum over input rows
// [floor(oy*H/OH), ceil((oy+1)*H/OH)) and likewise columns; the argmax is written as a flat
// index iy*W + ix within the plane (PyTorch's return_indices). One invocation per output.
struct U { nc: u32, h: u32, w: u32, oh: u32, ow: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> idx: array<i32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.nc * u.oh * u.ow) { return; }
  let ox = i % u.ow;
  let oy = (i / u.ow) % u.oh;
  let base = (i / (u.ow * u.oh)) * u.h * u.w;
  let y0 = oy * u.h / u.oh;
  let y1 = ((oy + 1u) * u.h + u.oh - 1u) / u.oh;
  let x0 = ox * u.w / u.ow;
  let x1 = ((ox + 1u) * u.w + u.ow - 1u) / u.ow;
  var best = x[base + y0 * u.w + x0];
  var arg = y0 * u.w + x0;
  for (var iy = y0; iy < y1; iy++) {
    for (var ix = x0; ix < x1; ix++) {
      let v = x[base + iy * u.w + ix];
      if (v > best) { best = v; arg = iy * u.w + ix; }
    }
  }
  out[i] = best;
  idx[i] = i32(arg);
}
