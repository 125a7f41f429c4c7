// out[o, x, y] = src[base(o) + x + y * sy]: a copy whose innermost output dimension (y) walks the
// source with stride sy while the next one (x) is contiguous in the source, e.g. [.., N, D] ->
// [.., D, N] or NCHW <-> NHWC. A 16 x 16 tile goes through workgroup memory (padded to 17 columns
// against bank conflicts) so that both the reads and the writes are contiguous across the
// workgroup (the classic GPU transpose). The outer dims are walked once per invocation from the
// workgroup's z index, never per element as in strided-copy.wgsl. Grid: [ceil(Y / 16),
// ceil(X / 16), outer]. A GPU kernel: CPU drivers take transpose-blocked.wgsl (barriers there
// are costly, PLATFORM.md).
struct U { shape: array<vec4<u32>, 2>, strides: array<vec4<i32>, 2>, rank: u32, x: u32, y: u32, sy: u32, offset: i32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> src: array<{{T}}>;
@group(0) @binding(2) var<storage, read_write> out: array<{{T}}>;

var<workgroup> tile: array<array<{{T}}, 17>, 16>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  var rem = wid.z;
  var j = u.offset;
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let s = u.shape[d / 4][d % 4];
    j += i32(rem % s) * u.strides[d / 4][d % 4];
    rem = rem / s;
  }
  // Load: lanes along x (contiguous in the source).
  let xi = wid.y * 16u + lid.x;
  let yi = wid.x * 16u + lid.y;
  if (xi < u.x && yi < u.y) { tile[lid.y][lid.x] = src[u32(j) + xi + yi * u.sy]; }
  workgroupBarrier();
  // Store: lanes along y (contiguous in the output).
  let yo = wid.x * 16u + lid.x;
  let xo = wid.y * 16u + lid.y;
  if (xo < u.x && yo < u.y) { out[(wid.z * u.x + xo) * u.y + yo] = tile[lid.x][lid.y]; }
}
