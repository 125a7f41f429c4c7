// Reduction where the reduced elements of each output form one strided run (the common case:
// bias gradients summing [rows, C] over rows, or a last-axis reduction with many rows): one
// invocation per output walks its run, no workgroup memory or barriers (cheap on CPU drivers,
// and enough parallelism whenever there are many outputs). Output r starts at the offset of r
// decomposed through `kshape`/`kstrides`; its run is `count` elements `rstride` apart.
struct U { kshape: array<vec4<u32>, 2>, kstrides: array<vec4<u32>, 2>, rows: u32, count: u32, krank: u32, rstride: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> src: array<{{T}}>;
@group(0) @binding(2) var<storage, read_write> out: array<{{T}}>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= u.rows) { return; }
  var rem = row;
  var off = 0u;
  for (var d = i32(u.krank) - 1; d >= 0; d--) {
    let s = u.kshape[d / 4][d % 4];
    off += (rem % s) * u.kstrides[d / 4][d % 4];
    rem = rem / s;
  }
  var acc: {{T}} = {{INIT}};
  for (var j = 0u; j < u.count; j++) {
    let v = src[off];
    acc = {{ACC}};
    off += u.rstride;
  }
  let count = u.count;
  out[row] = {{FINAL}};
}
