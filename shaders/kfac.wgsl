// K-FAC for depthwise convolutions: one small Kronecker block per channel. For channel c with
// k×k taps, ā is the k² patch values of that channel (zero outside the image) with a 1 appended
// (d = k² + 1), and g its scalar output gradient:
//   A_c = mean over images and positions of ā āᵀ     (depthwise_patch_stats, mode 0: expand)
//   G_c = (1/N) Σ_images Σ_classes Σ_positions g²     (col_sumsq)
// or, summing over positions before the outer product (mode 1: reduce, see src/lqf/kfac.rs),
//   A_c = (1/N) Σ_images m mᵀ with m the mean patch of the image, G_c from the pooled gradient.
// Both sums run over images (rows) first..batch: launchers split them (LOOP_BUDGET).
// and the preconditioner multiplies channel c's [taps; bias] gradient by A_c⁻¹ / G_c
// (depthwise_precondition, with the damped inverses computed on the host).

struct Conv {
    batch: u32, in_h: u32, in_w: u32, channels: u32,
    kh: u32, kw: u32, stride: u32, out_h: u32,
    out_w: u32, pad_top: u32, pad_left: u32, mode: u32,
    alpha: f32, beta: f32, first: u32, _p2: u32,
}

const WG: u32 = 64u;

fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

@group(0) @binding(0) var<storage, read> px: array<f32>;
@group(0) @binding(1) var<storage, read_write> pacc: array<f32>;
@group(0) @binding(2) var<uniform> pp: Conv;

// Patch value t of channel c at output (n, oy, ox); t = k² is the bias input 1.
fn patch_value(n: u32, oy: u32, ox: u32, c: u32, t: u32) -> f32 {
    let kk = pp.kh * pp.kw;
    if (t == kk) { return 1.0; }
    let iy = i32(oy * pp.stride + t / pp.kw) - i32(pp.pad_top);
    let ix = i32(ox * pp.stride + t % pp.kw) - i32(pp.pad_left);
    if (iy < 0 || ix < 0 || iy >= i32(pp.in_h) || ix >= i32(pp.in_w)) { return 0.0; }
    return px[((n * pp.in_h + u32(iy)) * pp.in_w + u32(ix)) * pp.channels + c];
}

// mode 0: acc[c, t1, t2] = alpha·Σ_(n,oy,ox) ā[t1]·ā[t2] + beta·acc[c, t1, t2]
// mode 1: acc[c, t1, t2] = alpha·Σ_n (Σ_(oy,ox) ā[t1])·(Σ_(oy,ox) ā[t2]) + beta·acc[c, t1, t2]
@compute @workgroup_size(64, 1, 1)
fn depthwise_patch_stats(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    let d = pp.kh * pp.kw + 1u;
    if (id >= pp.channels * d * d) { return; }
    let t2 = id % d;
    let t1 = (id / d) % d;
    let c = id / (d * d);
    // The mode is uniform, so the branches cost nothing per invocation.
    let reduce = pp.mode == 1u;
    var s = 0.0;
    for (var n = pp.first; n < pp.batch; n++) {
        var s1 = 0.0;
        var s2 = 0.0;
        for (var oy = 0u; oy < pp.out_h; oy++) {
            for (var ox = 0u; ox < pp.out_w; ox++) {
                let p1 = patch_value(n, oy, ox, c, t1);
                let p2 = patch_value(n, oy, ox, c, t2);
                if (reduce) {
                    s1 += p1;
                    s2 += p2;
                } else {
                    s = fma(p1, p2, s);
                }
            }
        }
        if (reduce) { s = fma(s1, s2, s); }
    }
    var v = pp.alpha * s;
    if (pp.beta != 0.0) { v += pp.beta * pacc[id]; }
    pacc[id] = v;
}

// out[c] = alpha·Σ_rows x[r, c]² + beta·out[c]; rows = batch, cols = channels.
@group(0) @binding(0) var<storage, read> sx: array<f32>;
@group(0) @binding(1) var<storage, read_write> sout: array<f32>;
@group(0) @binding(2) var<uniform> sp: Conv;

@compute @workgroup_size(64, 1, 1)
fn col_sumsq(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = linear_id(gid, nwg);
    if (c >= sp.channels) { return; }
    var s = 0.0;
    for (var r = sp.first; r < sp.batch; r++) {
        let v = sx[r * sp.channels + c];
        s = fma(v, v, s);
    }
    var o = sp.alpha * s;
    if (sp.beta != 0.0) { o += sp.beta * sout[c]; }
    sout[c] = o;
}

// Per channel: [ow; ob] = A_c⁻¹ · [gw; gb] · ginv[c]. Weights are HWIO with one input channel
// per group, so tap t of channel c is gw[t·C + c]. d ≤ 50 (up to 7×7 kernels).
@group(0) @binding(0) var<storage, read> qgw: array<f32>;
@group(0) @binding(1) var<storage, read> qgb: array<f32>;
@group(0) @binding(2) var<storage, read> qainv: array<f32>;
@group(0) @binding(3) var<storage, read> qginv: array<f32>;
@group(0) @binding(4) var<storage, read_write> qow: array<f32>;
@group(0) @binding(5) var<storage, read_write> qob: array<f32>;
@group(0) @binding(6) var<uniform> qp: Conv;

@compute @workgroup_size(64, 1, 1)
fn depthwise_precondition(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = linear_id(gid, nwg);
    let nch = qp.channels;
    if (c >= nch) { return; }
    let kk = qp.kh * qp.kw;
    let d = kk + 1u;
    var v: array<f32, 50>;
    for (var t = 0u; t < kk; t++) { v[t] = qgw[t * nch + c]; }
    v[kk] = qgb[c];
    let base = c * d * d;
    let gi = qginv[c];
    for (var i = 0u; i < d; i++) {
        var s = 0.0;
        for (var j = 0u; j < d; j++) { s = fma(qainv[base + i * d + j], v[j], s); }
        if (i < kk) { qow[i * nch + c] = s * gi; } else { qob[c] = s * gi; }
    }
}
