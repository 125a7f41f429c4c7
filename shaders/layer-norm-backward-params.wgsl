// Layer norm backward for weight and bias, first stage: partial column sums over a chunk of rows
//   dweight[c, j] = sum_{rows in chunk c} dy * xhat,  dbias[c, j] = sum_{rows in chunk c} dy
// with xhat = (x - mean) * rstd recomputed from the saved statistics. The caller sums the chunks.
// Parallel decomposition: a 2-d grid, x over columns (64 per workgroup, adjacent lanes read
// adjacent columns of a row) and y over chunks of `chunk` rows, one thread per (column, chunk);
// no workgroup memory and no barriers.
struct U { rows: u32, len: u32, chunk: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(6) var<storage, read_write> dbias: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let col = gid.x;
  let c = gid.y;
  if (col >= u.len) { return; }
  let start = c * u.chunk;
  let end = min(start + u.chunk, u.rows);
  var dw = 0.0;
  var db = 0.0;
  for (var r = start; r < end; r++) {
    let g = dy[r * u.len + col];
    dw += g * (x[r * u.len + col] - mean[r]) * rstd[r];
    db += g;
  }
  dweight[c * u.len + col] = dw;
  dbias[c * u.len + col] = db;
}
