// Elementwise out = f(x, y) over an output seen as [rows, cols], where each operand is a full
// [rows, cols] tensor, one row broadcast to every row (a bias [C] over [N, C]), or one value per
// row (a [N, 1] scale over [N, C]). The row comes from the workgroup id and the column from the
// invocation id, so no invocation divides: a row's offset is r * ra (ra = cols, 0 or 1 as the
// operand's layout says), a column's is c. {{XA}}/{{XB}} load an operand (`a[r * u.ra + c]`, or a
// splat of `a[r * u.ra]`); with vec4 types `cols` counts vec4s. {{EXPR}} is in `x`, `y`, `O`.
alias O = {{TO}};
struct U { rows: u32, cols: u32, ra: u32, rb: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<{{TA}}>;
@group(0) @binding(2) var<storage, read> b: array<{{TB}}>;
@group(0) @binding(3) var<storage, read_write> out: array<O>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = gid.x;
  let r = wid.y + wid.z * nwg.y;
  if (c >= u.cols || r >= u.rows) { return; }
  let x = {{XA}};
  let y = {{XB}};
  out[r * u.cols + c] = {{EXPR}};
}

// pow as PyTorch defines it for negative bases (see binary-flat.wgsl; scalar only).
fn pow_signed(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  let m = pow(abs(x), y);
  if (x >= 0.0) { return m; }
  let nanBits = 0x7fc00000u;
  if (fract(y) != 0.0) { return bitcast<f32>(nanBits); }
  return select(m, -m, fract(y * 0.5) != 0.0);
}
