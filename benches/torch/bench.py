#!/usr/bin/env python3
"""PyTorch doing the work of `lqf bench`, for issue 8's real-GPU comparison.

Same figure names as `lqf bench --json` (src/bench.rs), so scripts/bench_compare.py can put the
two side by side: the GEMM shapes, MobileNetV2's convolutions at batch 1, both backbones'
forward passes at batch 1 and 32 (upload and readback included, as ours), and the training
passes at depth 3 over 64 images in batches of 32 (trunk features cached): the two-stream
forward (torch.func.jvp), the backward (torch.func.vjp), one LQF CG iteration (a Gauss-Newton
product J^T J v: both), the K-FAC statistics (input factors from the layers' inputs, output
factors from one backward pass per class, batched with vmap) and the K-FAC inverse (Cholesky
inverses of the same dense factors).

Everything in float32 with TF32 off, because our kernels compute in float32. Timing as ours:
wall time of one call from launch to completion (torch.cuda.synchronize), best of --reps after
a warm-up. Weights are random (timing does not depend on them); EfficientNet-Lite0 needs timm
and is skipped without it.

    python3 benches/torch/bench.py [--reps 3] [--device cuda] [--json]
"""
import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def best_ms(dev, reps, f):
    f()  # warm-up: cuDNN algorithm choice, allocator, lazy init
    sync(dev)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        sync(dev)
        best = min(best, (time.perf_counter() - t0) * 1e3)
    return best


def figure(name, gflop, ms, images=0):
    f = {"name": name, "gflop": gflop, "ms": ms, "gflops": gflop / (ms / 1e3) if gflop else 0.0}
    if images:
        f["images_per_s"] = images / (ms / 1e3)
    return f


# (m, n, k, trans_a, trans_b): src/bench.rs gemm_shapes().
ROWS = 64 * 7 * 7
GEMMS = [(512, 512, 512, False, False), (1024, 1024, 1024, False, False), (2048, 2048, 2048, False, False),
         (ROWS, 160, 960, False, False), (960, 160, ROWS, True, False), (64, 10, 1280, False, False),
         (960, 960, ROWS, True, False)]

# (name, hw, cin, cout, k, stride, groups): src/bench.rs mobilenet_v2_convs().
CONVS = [("stem 3x3/2 3->32 @224", 224, 3, 32, 3, 2, 1), ("dw 3x3 32 @112", 112, 32, 32, 3, 1, 32),
         ("pw 32->16 @112", 112, 32, 16, 1, 1, 1), ("pw 16->96 @112", 112, 16, 96, 1, 1, 1),
         ("dw 3x3/2 96 @112", 112, 96, 96, 3, 2, 96), ("pw 24->144 @56", 56, 24, 144, 1, 1, 1),
         ("dw 3x3 144 @56", 56, 144, 144, 3, 1, 144), ("pw 144->24 @56", 56, 144, 24, 1, 1, 1),
         ("dw 3x3 384 @14", 14, 384, 384, 3, 1, 384), ("pw 384->64 @14", 14, 384, 64, 1, 1, 1),
         ("pw 960->160 @7", 7, 960, 160, 1, 1, 1), ("pw 320->1280 @7", 7, 320, 1280, 1, 1, 1)]


def bench_gemms(dev, reps):
    out = []
    for m, n, k, ta, tb in GEMMS:
        a = torch.rand((k, m) if ta else (m, k), device=dev)
        b = torch.rand((n, k) if tb else (k, n), device=dev)
        ms = best_ms(dev, reps, lambda: (a.t() if ta else a) @ (b.t() if tb else b))
        t = lambda x: "T" if x else "N"
        out.append(figure(f"gemm {m}x{n}x{k} {t(ta)}{t(tb)} b1", 2 * m * n * k / 1e9, ms))
    return out


def bench_convs(dev, reps):
    out = []
    for name, hw, cin, cout, k, stride, groups in CONVS:
        x = torch.rand(1, cin, hw, hw, device=dev)
        w = torch.rand(cout, cin // groups, k, k, device=dev)
        b = torch.rand(cout, device=dev)
        ms = best_ms(dev, reps, lambda: F.conv2d(x, w, b, stride=stride, padding=k // 2, groups=groups))
        ho = (hw + 2 * (k // 2) - k) // stride + 1
        out.append(figure(f"conv {name} b1", 2 * ho * ho * cout * k * k * (cin // groups) / 1e9, ms))
    return out


def conv_flops(model, hw):
    """Multiply-adds x2 of every Conv2d and Linear for one image at hw x hw (ours count the same)."""
    total = 0

    def hook(mod, inp, outp):
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            total += 2 * outp.numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, nn.Linear):
            total += 2 * mod.in_features * mod.out_features

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, 3, hw, hw, device=next(model.parameters()).device))
    for h in hs:
        h.remove()
    return total


def backbones(dev):
    import torchvision
    out = [("mobilenet_v2", torchvision.models.mobilenet_v2(weights=None))]
    try:
        import timm
        out.append(("efficientnet_lite0", timm.create_model("efficientnet_lite0", pretrained=False)))
    except Exception as e:  # timm missing, or a timm without the model
        print(f"efficientnet_lite0 skipped: {e}", file=sys.stderr)
    return [(name, m.to(dev).eval()) for name, m in out]


def bench_forward(dev, reps, name, model):
    out = []
    gflop1 = conv_flops(model, 224) / 1e9
    for batch in (1, 32):
        x = torch.rand(batch, 3, 224, 224)  # on the host: upload and readback are timed, as ours

        def run():
            with torch.no_grad():
                return model(x.to(dev)).cpu()

        out.append(figure(f"{name} forward b{batch}", gflop1 * batch, best_ms(dev, min(reps, 3), run), batch))
    return out


def leaky_relu6(alpha):
    class LeakyReLU6(nn.Module):
        def forward(self, x):
            return torch.clamp(torch.maximum(x, alpha * x), max=6.0)

    return LeakyReLU6()


def training_head(dev, model, name, depth, classes, alpha):
    """The linearized part at `depth`: the last `depth` blocks, the head convolution, pooling and
    a new classifier; ReLU6 made leaky as in LQF. Returns (module, trunk feature shape)."""
    import copy

    # [stem, blocks..., head convolution], as src/model/arch.rs lists them.
    if name == "mobilenet_v2":
        feats = list(model.features)
    else:  # timm EfficientNet: the blocks are stages of blocks
        feats = [nn.Sequential(model.conv_stem, model.bn1)] + [b for stage in model.blocks for b in stage] + [nn.Sequential(model.conv_head, model.bn2)]
    cut = len(feats) - 1 - depth
    blocks = copy.deepcopy(nn.Sequential(*feats[cut:]))
    for parent in blocks.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, (nn.ReLU6, nn.ReLU, nn.Hardtanh)):
                setattr(parent, child_name, leaky_relu6(alpha))
    with torch.no_grad():
        shape = nn.Sequential(*feats[:cut]).eval()(torch.zeros(1, 3, 224, 224, device=dev)).shape[1:]
    cout = [m for m in blocks.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
    head = nn.Sequential(blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cout, classes))
    return head.to(dev).eval(), tuple(shape)


def bench_training(dev, reps, name, model, depth=3, n=64, batch=32, classes=10, alpha=0.05):
    from torch.func import functional_call, jvp, vjp

    head, shape = training_head(dev, model, name, depth, classes, alpha)
    convs = [(mname, m) for mname, m in head.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    # The convolutions' and classifier's parameters (ours fold BatchNorm into them; here BatchNorm
    # stays a fixed affine map in eval mode).
    layers = {mname for mname, _ in convs}
    params = {k: p.detach() for k, p in head.named_parameters() if k.rsplit(".", 1)[0] in layers}
    z = torch.rand(n, *shape, device=dev)
    zs = list(z.split(batch))
    v = {k: torch.randn_like(p) for k, p in params.items()}
    g = torch.randn(batch, classes, device=dev)
    lam = 1e-3

    def f(p, zb):
        return functional_call(head, p, (zb,))

    def jvp_pass():
        return [jvp(lambda p: f(p, zb), (params,), (v,))[1] for zb in zs]

    def vjp_pass():
        return [vjp(lambda p: f(p, zb), params)[1](g[: zb.shape[0]]) for zb in zs]

    def cg_iteration():  # (J^T J / n + lambda) v, as the quadratic's Hessian-vector product
        hv = {k: lam * x for k, x in v.items()}
        for zb in zs:
            _, jv = jvp(lambda p: f(p, zb), (params,), (v,))
            (gb,) = vjp(lambda p: f(p, zb), params)[1](jv / n)
            for k in hv:
                hv[k] = hv[k] + gb[k]
        return hv

    def kfac_statistics():
        a_f = {k: 0 for k, _ in convs}
        g_f = {k: 0 for k, _ in convs}
        for zb in zs:
            inputs, outputs = {}, {}

            def grab(mname):
                def hook(mod, inp, outp):
                    inputs[mname] = inp[0]
                    outputs[mname] = outp
                return hook

            hs = [m.register_forward_hook(grab(mname)) for mname, m in convs]
            logits = head(zb)
            for h in hs:
                h.remove()
            outs = [outputs[k] for k, _ in convs]
            # One backward pass per class (the Gauss-Newton factor of MSE), batched with vmap.
            eye = torch.eye(classes, device=dev).unsqueeze(1).expand(classes, zb.shape[0], classes)
            grads = torch.autograd.grad([logits], outs, [eye], retain_graph=True, is_grads_batched=True)
            for (k, m), gk in zip(convs, grads):
                x = inputs[k]
                if isinstance(m, nn.Linear):
                    a = torch.cat([x, torch.ones_like(x[:, :1])], 1)
                    a_f[k] = a_f[k] + a.t() @ a
                    gg = gk.reshape(-1, gk.shape[-1])
                    g_f[k] = g_f[k] + gg.t() @ gg
                elif m.groups == 1 and m.kernel_size == (1, 1):
                    a = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
                    a = torch.cat([a, torch.ones_like(a[:, :1])], 1)
                    a_f[k] = a_f[k] + a.t() @ a
                    gg = gk.permute(0, 1, 3, 4, 2).reshape(-1, gk.shape[2])
                    g_f[k] = g_f[k] + gg.t() @ gg
                else:  # depthwise: per channel, a (k^2+1)^2 factor over its patches and a scalar
                    kk = m.kernel_size[0]
                    p = F.unfold(x, kk, padding=kk // 2, stride=m.stride).reshape(x.shape[0], x.shape[1], kk * kk, -1)
                    p = torch.cat([p, torch.ones_like(p[:, :, :1])], 2)
                    a_f[k] = a_f[k] + torch.einsum("bcil,bcjl->cij", p, p)
                    g_f[k] = g_f[k] + (gk * gk).sum((0, 1, 3, 4))
        return a_f, g_f

    factors = kfac_statistics()

    def kfac_inverse():
        out = []
        for fs in factors:
            for x in fs.values():
                if x.dim() == 0 or x.dim() == 1:
                    out.append(1.0 / (x + lam))
                    continue
                eye = torch.eye(x.shape[-1], device=dev)
                out.append(torch.cholesky_inverse(torch.linalg.cholesky(x / n + lam * eye)))
        return out

    dense = [x.shape[-1] for fs in factors for x in fs.values() if x.dim() == 2]
    inv_gflop = sum(d ** 3 for d in dense) / 1e9
    r = min(reps, 2)
    return [
        figure(f"{name} JVP pass depth {depth}", 0, best_ms(dev, r, jvp_pass), n),
        figure(f"{name} VJP pass depth {depth}", 0, best_ms(dev, r, vjp_pass), n),
        figure(f"{name} LQF CG iteration depth {depth}", 0, best_ms(dev, r, cg_iteration), n),
        figure(f"{name} K-FAC statistics depth {depth}", 0, best_ms(dev, r, kfac_statistics), n),
        figure(f"{name} K-FAC inverse depth {depth}", inv_gflop, best_ms(dev, r, kfac_inverse)),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    dev = torch.device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    figures = []

    def report(fs):
        figures.extend(fs)
        if not args.json:
            for f in fs:
                extra = f" {f['images_per_s']:>8.2f} images/s" if "images_per_s" in f else ""
                print(f"{f['name']:<36} {f['ms']:>9.3f} ms {f['gflops']:>8.2f} GFLOP/s{extra}", flush=True)

    report(bench_gemms(dev, args.reps))
    report(bench_convs(dev, args.reps))
    for bname, model in backbones(dev):
        report(bench_forward(dev, args.reps, bname, model))
        report(bench_training(dev, args.reps, bname, model))
    if args.json:
        print(json.dumps({"adapter": f"PyTorch {torch.__version__} on {name}", "figures": figures}))


if __name__ == "__main__":
    main()
