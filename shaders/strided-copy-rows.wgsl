// out[i] = src[offset + row offset + c] when the source's innermost dimension is contiguous
// (slices, most permutes, contiguous copies): one division per invocation splits i into a row
// and a column, and only the outer dimensions are walked for the row's offset, instead of every
// dimension per element (strided-copy.wgsl). With {{T}} a vec4, the row length, the offset and
// every outer stride are multiples of 4 and are given here in vec4s.
struct U { shape: array<vec4<u32>, 2>, strides: array<vec4<i32>, 2>, n: u32, rank: u32, offset: i32, cols: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> src: array<{{T}}>;
@group(0) @binding(2) var<storage, read_write> out: array<{{T}}>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  let r = i / u.cols;
  var rem = r;
  var j = u.offset;
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let s = u.shape[d / 4][d % 4];
    j += i32(rem % s) * u.strides[d / 4][d % 4];
    rem = rem / s;
  }
  out[i] = src[u32(j) + i - r * u.cols];
}
