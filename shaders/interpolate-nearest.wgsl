// Nearest interpolation (PyTorch's 'nearest', upsample_nearest2d): output o reads input
// min(floor(o * scale), n - 1), in f32 as PyTorch does; the host picks the scale (1/scale_factor
// when given, else in/out; exactly 1 and 0.5 for PyTorch's same-size and double-size shortcuts).
struct U { nc: u32, h: u32, w: u32, oh: u32, ow: u32, align: u32, sh: f32, sw: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn source(o: u32, scale: f32, n: u32) -> u32 { return min(u32(floor(f32(o) * scale)), n - 1u); }

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.nc * u.oh * u.ow) { return; }
  let ox = i % u.ow;
  let oy = (i / u.ow) % u.oh;
  let base = (i / (u.ow * u.oh)) * u.h * u.w;
  out[i] = x[base + source(oy, u.sh, u.h) * u.w + source(ox, u.sw, u.w)];
}
