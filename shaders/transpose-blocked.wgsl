// The CPU-driver form of transpose-tiled.wgsl (same uniforms and result): no workgroup memory or
// barriers (costly on CPU drivers, PLATFORM.md). Each invocation moves a 4 x 4 block, reading
// four source runs of 4 contiguous x and writing four output runs of 4 contiguous y, so index
// math is per block, not per element, and the outer dims are walked once per invocation.
// Grid: [ceil(Y / 4 / 8), ceil(X / 4 / 8), outer] of 8 x 8 invocations.
struct U { shape: array<vec4<u32>, 2>, strides: array<vec4<i32>, 2>, rank: u32, x: u32, y: u32, sy: u32, offset: i32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> src: array<{{T}}>;
@group(0) @binding(2) var<storage, read_write> out: array<{{T}}>;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let y0 = gid.x * 4u;
  let x0 = gid.y * 4u;
  if (x0 >= u.x || y0 >= u.y) { return; }
  var rem = gid.z;
  var j = u.offset;
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let s = u.shape[d / 4][d % 4];
    j += i32(rem % s) * u.strides[d / 4][d % 4];
    rem = rem / s;
  }
  let nx = min(4u, u.x - x0);
  let ny = min(4u, u.y - y0);
  let o = (gid.z * u.x + x0) * u.y + y0;
  for (var b = 0u; b < ny; b++) {
    let s = u32(j) + x0 + (y0 + b) * u.sy;
    for (var a = 0u; a < nx; a++) { out[o + a * u.y + b] = src[s + a]; }
  }
}
