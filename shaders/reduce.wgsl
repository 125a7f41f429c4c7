// Reduction of a [rows, R] view: one workgroup per output row, 64 lanes striding over R, then a
// tree in workgroup memory. Row r starts at its base offset (kept dims decomposed through
// `kshape`/`kstrides`); element j of the row sits at the offset of j decomposed through
// `rshape`/`rstrides`. {{INIT}}, {{ACC}} (in `acc`, `v`) and {{FINAL}} (in `acc`, `count`)
// define the reduction.
struct U { kshape: array<vec4<u32>, 2>, kstrides: array<vec4<u32>, 2>, rshape: array<vec4<u32>, 2>, rstrides: array<vec4<u32>, 2>, rows: u32, count: u32, krank: u32, rrank: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> src: array<{{T}}>;
@group(0) @binding(2) var<storage, read_write> out: array<{{T}}>;
var<workgroup> part: array<{{T}}, 64>;

fn offsetOf(idx: u32, isKept: bool) -> u32 {
  var rem = idx;
  var off = 0u;
  let rank = select(u.rrank, u.krank, isKept);
  for (var d = i32(rank) - 1; d >= 0; d--) {
    let s = select(u.rshape[d / 4][d % 4], u.kshape[d / 4][d % 4], isKept);
    let st = select(u.rstrides[d / 4][d % 4], u.kstrides[d / 4][d % 4], isKept);
    off += (rem % s) * st;
    rem = rem / s;
  }
  return off;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= u.rows) { return; }
  let base = offsetOf(row, true);
  var acc: {{T}} = {{INIT}};
  for (var j = lid.x; j < u.count; j += 64u) {
    let v = src[base + offsetOf(j, false)];
    acc = {{ACC}};
  }
  part[lid.x] = acc;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (lid.x < s) {
      let v = part[lid.x + s];
      acc = part[lid.x];
      part[lid.x] = {{ACC}};
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    acc = part[0];
    let count = u.count;
    out[row] = {{FINAL}};
  }
}
