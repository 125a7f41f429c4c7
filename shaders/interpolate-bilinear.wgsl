// Bilinear interpolation (PyTorch's upsample_bilinear2d): one invocation per output element.
// Source coordinate along an axis: align_corners ? scale*o : max(scale*(o + 0.5) - 0.5, 0), with
// the scale chosen on the host as PyTorch does; i0 = floor(src), i1 = min(i0 + 1, n - 1),
// lambda = src - i0. Computed in f32 as PyTorch does for f32 tensors.
struct U { nc: u32, h: u32, w: u32, oh: u32, ow: u32, align: u32, sh: f32, sw: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// (i0, i1) and lambda of output index o along an axis of n inputs.
fn taps(o: u32, scale: f32, n: u32) -> vec3f {
  var src = scale * f32(o);
  if (u.align == 0u) { src = max(scale * (f32(o) + 0.5) - 0.5, 0.0); }
  let i0 = min(u32(src), n - 1u);
  let i1 = min(i0 + 1u, n - 1u);
  return vec3f(f32(i0), f32(i1), clamp(src - f32(i0), 0.0, 1.0));
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.nc * u.oh * u.ow) { return; }
  let ox = i % u.ow;
  let oy = (i / u.ow) % u.oh;
  let base = (i / (u.ow * u.oh)) * u.h * u.w;
  let ty = taps(oy, u.sh, u.h);
  let tx = taps(ox, u.sw, u.w);
  let r0 = base + u32(ty.x) * u.w;
  let r1 = base + u32(ty.y) * u.w;
  let x0 = u32(tx.x);
  let x1 = u32(tx.y);
  let top = (1.0 - tx.z) * x[r0 + x0] + tx.z * x[r0 + x1];
  let bottom = (1.0 - tx.z) * x[r1 + x0] + tx.z * x[r1 + x1];
  out[i] = (1.0 - ty.z) * top + ty.z * bottom;
}
