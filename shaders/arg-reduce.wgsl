// argmax / argmin along one axis: the index of the extreme element of each row, the first one
// among ties, and the first NaN if the row has one (NaN beats every number, as in PyTorch).
// {{T}} is the element type; {{BEATS}} says that b beats a: `b > a` (argmax) or `b < a`
// (argmin); {{ISNAN}} is an expression in `v` (`false` for integers).
// Parallel decomposition: one workgroup of 64 lanes per row. Each lane scans its strided share
// of the row in increasing index order keeping its best (value, index); the 64 candidates merge
// in a tree in workgroup memory where a tie goes to the smaller index. Row r starts at
// (r / inner) * len * inner + r % inner and its elements are `inner` apart.
struct U { rows: u32, len: u32, inner: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<{{T}}>;
@group(0) @binding(2) var<storage, read_write> out: array<i32>;
var<workgroup> pv: array<{{T}}, 64>;
var<workgroup> pi: array<u32, 64>;

const NONE = 0xffffffffu;

fn isNan(v: {{T}}) -> bool { return {{ISNAN}}; }

// Whether candidate (b, ib) replaces (a, ia); ib > ia whenever both are real candidates scanned
// in order, and NONE marks a lane that saw no element.
fn replaces(a: {{T}}, ia: u32, b: {{T}}, ib: u32) -> bool {
  if (ib == NONE) { return false; }
  if (ia == NONE) { return true; }
  let na = isNan(a);
  let nb = isNan(b);
  if (na || nb) { return nb && (!na || ib < ia); }
  return ({{BEATS}}) || (a == b && ib < ia);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= u.rows) { return; }
  let base = (row / u.inner) * u.len * u.inner + row % u.inner;
  var best: {{T}} = {{T}}(0);
  var bi = NONE;
  for (var j = lid.x; j < u.len; j += 64u) {
    let v = x[base + j * u.inner];
    if (replaces(best, bi, v, j)) { best = v; bi = j; }
  }
  pv[lid.x] = best;
  pi[lid.x] = bi;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k >>= 1u) {
    if (lid.x < k) {
      let v = pv[lid.x + k];
      let j = pi[lid.x + k];
      if (replaces(best, bi, v, j)) {
        best = v;
        bi = j;
        pv[lid.x] = v;
        pi[lid.x] = j;
      }
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) { out[row] = i32(bi); }
}
