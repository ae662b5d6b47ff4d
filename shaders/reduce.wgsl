// Reductions over rows and pixels: global average pool (and its transpose), column sums (bias
// gradients), per-row softmax / argmax for predictions, and the cross-entropy loss with its
// residual. Layouts are NHWC / row-major.

struct Params {
    rows: u32, cols: u32, inner: u32, first: u32,
    alpha: f32, beta: f32, _p1: u32, _p2: u32,
}

const WG: u32 = 64u;

fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

// [rows = n, inner = hw, cols = c] -> [n, c]: mean over the pixels.
@compute @workgroup_size(64, 1, 1)
fn global_avg_pool(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= p.rows * p.cols) { return; }
    let n = i / p.cols;
    let c = i % p.cols;
    var s = 0.0;
    for (var q = 0u; q < p.inner; q++) {
        s += x[(n * p.inner + q) * p.cols + c];
    }
    out[i] = s / f32(p.inner);
}

// [n, c] -> [n, hw, c]: every pixel gets g / hw.
@compute @workgroup_size(64, 1, 1)
fn global_avg_pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= p.rows * p.inner * p.cols) { return; }
    let c = i % p.cols;
    let n = i / (p.inner * p.cols);
    out[i] = x[n * p.cols + c] / f32(p.inner);
}

// [rows, cols] -> [cols]: out = alpha·Σ_rows x + beta·out (bias gradients, accumulated), over
// rows first..rows (the launcher splits long sums, see LOOP_BUDGET).
@compute @workgroup_size(64, 1, 1)
fn col_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = linear_id(gid, nwg);
    if (c >= p.cols) { return; }
    var s = 0.0;
    for (var r = p.first; r < p.rows; r++) {
        s += x[r * p.cols + c];
    }
    var v = p.alpha * s;
    if (p.beta != 0.0) { v += p.beta * out[c]; }
    out[c] = v;
}

// Per-row softmax, max-subtracted so large logits do not overflow.
@compute @workgroup_size(64, 1, 1)
fn softmax_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = linear_id(gid, nwg);
    if (r >= p.rows) { return; }
    let b = r * p.cols;
    var m = x[b];
    for (var j = 1u; j < p.cols; j++) { m = max(m, x[b + j]); }
    var s = 0.0;
    for (var j = 0u; j < p.cols; j++) { s += exp(x[b + j] - m); }
    for (var j = 0u; j < p.cols; j++) { out[b + j] = exp(x[b + j] - m) / s; }
}

// Cross-entropy of logits [rows, cols] against u32 labels: the residual ∂ℓ/∂f = softmax(f) −
// onehot(y) and each row's loss ℓ = logsumexp(f) − f_y, max-subtracted like softmax_rows.
@group(0) @binding(0) var<storage, read> cx: array<f32>;
@group(0) @binding(1) var<storage, read> clabels: array<u32>;
@group(0) @binding(2) var<storage, read_write> cres: array<f32>;
@group(0) @binding(3) var<storage, read_write> closs: array<f32>;
@group(0) @binding(4) var<uniform> cp: Params;

@compute @workgroup_size(64, 1, 1)
fn softmax_cross_entropy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = linear_id(gid, nwg);
    if (r >= cp.rows) { return; }
    let b = r * cp.cols;
    let y = clabels[r];
    var m = cx[b];
    for (var j = 1u; j < cp.cols; j++) { m = max(m, cx[b + j]); }
    var s = 0.0;
    for (var j = 0u; j < cp.cols; j++) { s += exp(cx[b + j] - m); }
    for (var j = 0u; j < cp.cols; j++) {
        cres[b + j] = exp(cx[b + j] - m) / s - select(0.0, 1.0, j == y);
    }
    closs[r] = m + log(s) - cx[b + y];
}

@group(0) @binding(0) var<storage, read> ax: array<f32>;
@group(0) @binding(1) var<storage, read_write> aout: array<u32>;
@group(0) @binding(2) var<uniform> ap: Params;

// Index of the largest value of each row (the first one on ties).
@compute @workgroup_size(64, 1, 1)
fn argmax_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = linear_id(gid, nwg);
    if (r >= ap.rows) { return; }
    let b = r * ap.cols;
    var best = 0u;
    for (var j = 1u; j < ap.cols; j++) {
        if (ax[b + j] > ax[b + best]) { best = j; }
    }
    aout[r] = best;
}

// Partial dot products: workgroup g sums x·y over its grid-stride share into out[inner + g]
// (inner = an output offset, so many dot products share one buffer and one readback); the host
// adds the partials in f64. Used by the conjugate-gradient solver.
@group(0) @binding(0) var<storage, read> dxv: array<f32>;
@group(0) @binding(1) var<storage, read> dyv: array<f32>;
@group(0) @binding(2) var<storage, read_write> dout: array<f32>;
@group(0) @binding(3) var<uniform> dp: Params;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn dot_partial(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = dp.rows;
    var s = 0.0;
    for (var i = wid.x * 256u + lid; i < n; i += nwg.x * 256u) {
        s = fma(dxv[i], dyv[i], s);
    }
    partial[lid] = s;
    for (var w = 128u; w > 0u; w = w / 2u) {
        workgroupBarrier();
        if (lid < w) { partial[lid] += partial[lid + w]; }
    }
    if (lid == 0u) { dout[dp.inner + wid.x] = partial[0]; }
}
