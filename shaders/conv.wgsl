// 2-D convolution over NHWC activations with HWIO weights [kh, kw, cin/groups, cout]:
// any kernel size, stride, groups (depthwise included), symmetric or TF-"SAME" padding
// (given here as resolved top/left pads), optional folded bias, optional accumulate into y,
// optional fused activation: y = act(conv(x) + bias [+ y]).
// Also the two transposes: backward data (dx) and backward weight (dw).
// 1x1 stride-1 ungrouped convolutions never come here: the launcher sends them to the GEMM.

struct Params {
    batch: u32, in_h: u32, in_w: u32, cin: u32,
    cout: u32, kh: u32, kw: u32, stride: u32,
    groups: u32, out_h: u32, out_w: u32, pad_top: u32,
    pad_left: u32, has_bias: u32, accumulate: u32, act: u32,
    alpha: f32, beta: f32, act_alpha: f32, first: u32,
}

// Fused epilogue of the forward kernels: leaky-ReLU6 (common.wgsl) with slope act_alpha, when act != 0.
fn act4(v: vec4<f32>, on: u32, a: f32) -> vec4<f32> {
    if (on == 0u) { return v; }
    return vec4<f32>(leaky_relu6(v.x, a), leaky_relu6(v.y, a), leaky_relu6(v.z, a), leaky_relu6(v.w, a));
}

const WG: u32 = 64u;

fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

// ------------------------------------------------------------------ forward
@group(0) @binding(0) var<storage, read> fx: array<f32>;
@group(0) @binding(1) var<storage, read> fw: array<f32>;
@group(0) @binding(2) var<storage, read> fbias: array<f32>;
@group(0) @binding(3) var<storage, read_write> fy: array<f32>;
@group(0) @binding(4) var<uniform> fp: Params;

// One invocation: one output pixel, four consecutive output channels (registers).
@compute @workgroup_size(64, 1, 1)
fn conv_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = fp;
    let id = linear_id(gid, nwg);
    let ncb = (p.cout + 3u) / 4u;
    let npix = p.batch * p.out_h * p.out_w;
    if (id >= npix * ncb) { return; }
    let cb = id % ncb;
    let pix = id / ncb;
    let ox = pix % p.out_w;
    let oy = (pix / p.out_w) % p.out_h;
    let n = pix / (p.out_w * p.out_h);
    let cin_g = p.cin / p.groups;
    let cout_g = p.cout / p.groups;
    let co = min(vec4<u32>(cb * 4u) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.cout - 1u));
    let grp_in = (co / cout_g) * cin_g;
    var acc = vec4<f32>(0.0);
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = i32(oy * p.stride + ky) - i32(p.pad_top);
        if (iy < 0 || iy >= i32(p.in_h)) { continue; }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = i32(ox * p.stride + kx) - i32(p.pad_left);
            if (ix < 0 || ix >= i32(p.in_w)) { continue; }
            let xb = ((n * p.in_h + u32(iy)) * p.in_w + u32(ix)) * p.cin;
            let wb = (ky * p.kw + kx) * cin_g;
            if (p.groups == 1u) {
                for (var ci = 0u; ci < cin_g; ci++) {
                    let wr = (wb + ci) * p.cout;
                    acc = fma(vec4<f32>(fx[xb + ci]), vec4<f32>(fw[wr + co.x], fw[wr + co.y], fw[wr + co.z], fw[wr + co.w]), acc);
                }
            } else {
                for (var ci = 0u; ci < cin_g; ci++) {
                    let wr = (wb + ci) * p.cout;
                    let xv = vec4<f32>(fx[xb + grp_in.x + ci], fx[xb + grp_in.y + ci], fx[xb + grp_in.z + ci], fx[xb + grp_in.w + ci]);
                    acc = fma(xv, vec4<f32>(fw[wr + co.x], fw[wr + co.y], fw[wr + co.z], fw[wr + co.w]), acc);
                }
            }
        }
    }
    let yb = pix * p.cout;
    for (var t = 0u; t < 4u; t++) {
        let c = cb * 4u + t;
        if (c < p.cout) {
            var v = acc[t];
            if (p.has_bias != 0u) { v += fbias[c]; }
            if (p.accumulate != 0u) { v += fy[yb + c]; }
            if (p.act != 0u) { v = leaky_relu6(v, p.act_alpha); }
            fy[yb + c] = v;
        }
    }
}

// ------------------------------------------------------------------ backward data
@group(0) @binding(0) var<storage, read> ddy: array<f32>;
@group(0) @binding(1) var<storage, read> dw_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> ddx: array<f32>;
@group(0) @binding(3) var<uniform> dp: Params;

// One invocation per input element: gather every (output pixel, tap) that read it.
@compute @workgroup_size(64, 1, 1)
fn conv_backward_data(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = dp;
    let id = linear_id(gid, nwg);
    if (id >= p.batch * p.in_h * p.in_w * p.cin) { return; }
    let ci = id % p.cin;
    let ix = (id / p.cin) % p.in_w;
    let iy = (id / (p.cin * p.in_w)) % p.in_h;
    let n = id / (p.cin * p.in_w * p.in_h);
    let cin_g = p.cin / p.groups;
    let cout_g = p.cout / p.groups;
    let grp = ci / cin_g;
    let ci_l = ci % cin_g;
    var acc = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        let ty = i32(iy + p.pad_top) - i32(ky);
        if (ty < 0 || ty % i32(p.stride) != 0) { continue; }
        let oy = u32(ty) / p.stride;
        if (oy >= p.out_h) { continue; }
        for (var kx = 0u; kx < p.kw; kx++) {
            let tx = i32(ix + p.pad_left) - i32(kx);
            if (tx < 0 || tx % i32(p.stride) != 0) { continue; }
            let ox = u32(tx) / p.stride;
            if (ox >= p.out_w) { continue; }
            let yb = ((n * p.out_h + oy) * p.out_w + ox) * p.cout + grp * cout_g;
            let wb = ((ky * p.kw + kx) * cin_g + ci_l) * p.cout + grp * cout_g;
            for (var c = 0u; c < cout_g; c++) {
                acc = fma(ddy[yb + c], dw_in[wb + c], acc);
            }
        }
    }
    ddx[id] = acc;
}

// ------------------------------------------------------------------ backward weight
@group(0) @binding(0) var<storage, read> wx: array<f32>;
@group(0) @binding(1) var<storage, read> wdy: array<f32>;
@group(0) @binding(2) var<storage, read_write> wdw: array<f32>;
@group(0) @binding(3) var<uniform> wp: Params;

// One invocation per weight: dw = alpha * Σ_(n,oy,ox) dy·x + beta * dw, over images first..batch
// (the launcher splits long sums, see LOOP_BUDGET).
@compute @workgroup_size(64, 1, 1)
fn conv_backward_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = wp;
    let id = linear_id(gid, nwg);
    let cin_g = p.cin / p.groups;
    if (id >= p.kh * p.kw * cin_g * p.cout) { return; }
    let co = id % p.cout;
    let ci_l = (id / p.cout) % cin_g;
    let kx = (id / (p.cout * cin_g)) % p.kw;
    let ky = id / (p.cout * cin_g * p.kw);
    let ci = (co / (p.cout / p.groups)) * cin_g + ci_l;
    var acc = 0.0;
    for (var n = p.first; n < p.batch; n++) {
        for (var oy = 0u; oy < p.out_h; oy++) {
            let iy = i32(oy * p.stride + ky) - i32(p.pad_top);
            if (iy < 0 || iy >= i32(p.in_h)) { continue; }
            for (var ox = 0u; ox < p.out_w; ox++) {
                let ix = i32(ox * p.stride + kx) - i32(p.pad_left);
                if (ix < 0 || ix >= i32(p.in_w)) { continue; }
                let g = wdy[((n * p.out_h + oy) * p.out_w + ox) * p.cout + co];
                acc = fma(g, wx[((n * p.in_h + u32(iy)) * p.in_w + u32(ix)) * p.cin + ci], acc);
            }
        }
    }
    var v = p.alpha * acc;
    if (p.beta != 0.0) { v += p.beta * wdw[id]; }
    wdw[id] = v;
}

// ------------------------------------------------------------------ vec4 output-channel kernels
// Two kernels for convolutions whose output channels come in vec4s: every invocation owns four
// output channels at four consecutive output pixels of a row, so each weight load (one vec4)
// feeds four vec4 FMAs. Accumulators are separate variables (constant indices keep them in
// registers). Both share the bindings below, the tile decoding and the fused store.
@group(0) @binding(1) var<storage, read> vw: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> vbias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> vy: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> vp: Params;

// One invocation's tile: channel vec4 c4, output pixels ox0..ox0+4 of row oy of image n.
struct Tile { c4: u32, ox0: u32, oy: u32, n: u32, valid: bool }

fn vec4_tile(id: u32) -> Tile {
    let nc4 = vp.cout / 4u;
    let ntx = (vp.out_w + 3u) / 4u;
    let valid = id < vp.batch * vp.out_h * ntx * nc4;
    return Tile(id % nc4, ((id / nc4) % ntx) * 4u, (id / (nc4 * ntx)) % vp.out_h, id / (nc4 * ntx * vp.out_h), valid);
}

// y = act(v + bias [+ y]) at output pixel ox of the tile's row.
fn vec4_store(t: Tile, ox: u32, v: vec4<f32>) {
    if (ox >= vp.out_w) { return; }
    let idx = ((t.n * vp.out_h + t.oy) * vp.out_w + ox) * (vp.cout / 4u) + t.c4;
    var out = v;
    if (vp.has_bias != 0u) { out += vbias[t.c4]; }
    if (vp.accumulate != 0u) { out += vy[idx]; }
    vy[idx] = act4(out, vp.act, vp.act_alpha);
}

fn vec4_store_all(t: Tile, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) {
    vec4_store(t, t.ox0, a0);
    vec4_store(t, t.ox0 + 1u, a1);
    vec4_store(t, t.ox0 + 2u, a2);
    vec4_store(t, t.ox0 + 3u, a3);
}

// Depthwise (groups = cin = cout, channels % 4 == 0): input channels are the output's.
@group(0) @binding(0) var<storage, read> vx: array<vec4<f32>>;

fn dw_tap(n: u32, iy: i32, ix: i32, c4: u32, wv: vec4<f32>) -> vec4<f32> {
    if (ix < 0 || ix >= i32(vp.in_w)) { return vec4<f32>(0.0); }
    return vx[((n * vp.in_h + u32(iy)) * vp.in_w + u32(ix)) * (vp.cout / 4u) + c4] * wv;
}

@compute @workgroup_size(64, 1, 1)
fn depthwise_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = vec4_tile(linear_id(gid, nwg));
    if (!t.valid) { return; }
    let p = vp;
    let s = i32(p.stride);
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = i32(t.oy * p.stride + ky) - i32(p.pad_top);
        if (iy < 0 || iy >= i32(p.in_h)) { continue; }
        for (var kx = 0u; kx < p.kw; kx++) {
            let wv = vw[(ky * p.kw + kx) * (p.cout / 4u) + t.c4];
            let ix = i32(t.ox0 * p.stride + kx) - i32(p.pad_left);
            a0 += dw_tap(t.n, iy, ix, t.c4, wv);
            a1 += dw_tap(t.n, iy, ix + s, t.c4, wv);
            a2 += dw_tap(t.n, iy, ix + 2 * s, t.c4, wv);
            a3 += dw_tap(t.n, iy, ix + 3 * s, t.c4, wv);
        }
    }
    vec4_store_all(t, a0, a1, a2, a3);
}

// Dense (groups = 1, cout % 4 == 0; the stems): scalar input, one vec4 of weights per
// (tap, input channel).
@group(0) @binding(0) var<storage, read> dx: array<f32>;

fn dense_tap(row: u32, ix: i32, ci: u32) -> f32 {
    if (ix < 0 || ix >= i32(vp.in_w)) { return 0.0; }
    return dx[(row + u32(ix)) * vp.cin + ci];
}

@compute @workgroup_size(64, 1, 1)
fn dense_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = vec4_tile(linear_id(gid, nwg));
    if (!t.valid) { return; }
    let p = vp;
    let s = i32(p.stride);
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = i32(t.oy * p.stride + ky) - i32(p.pad_top);
        if (iy < 0 || iy >= i32(p.in_h)) { continue; }
        let row = (t.n * p.in_h + u32(iy)) * p.in_w;
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = i32(t.ox0 * p.stride + kx) - i32(p.pad_left);
            for (var ci = 0u; ci < p.cin; ci++) {
                let wv = vw[((ky * p.kw + kx) * p.cin + ci) * (p.cout / 4u) + t.c4];
                a0 = fma(vec4<f32>(dense_tap(row, ix, ci)), wv, a0);
                a1 = fma(vec4<f32>(dense_tap(row, ix + s, ci)), wv, a1);
                a2 = fma(vec4<f32>(dense_tap(row, ix + 2 * s, ci)), wv, a2);
                a3 = fma(vec4<f32>(dense_tap(row, ix + 3 * s, ci)), wv, a3);
            }
        }
    }
    vec4_store_all(t, a0, a1, a2, a3);
}
