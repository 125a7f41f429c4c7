// dst[offset + sum_d coord_d(i) * stride_d] = src[i]: writes a contiguous tensor into a strided
// window of a larger one (cat, slice backward, pad). Positions must not overlap.
struct U { shape: array<vec4<u32>, 2>, strides: array<vec4<i32>, 2>, n: u32, rank: u32, offset: i32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> src: array<{{T}}>;
@group(0) @binding(2) var<storage, read_write> dst: array<{{T}}>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  var rem = i;
  var j = u.offset;
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let s = u.shape[d / 4][d % 4];
    j += i32(rem % s) * u.strides[d / 4][d % 4];
    rem = rem / s;
  }
  dst[u32(j)] = src[i];
}
