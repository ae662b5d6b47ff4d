#!/usr/bin/env python3
"""Side by side: `lqf bench --json` and `benches/torch/bench.py --json` from the same machine.

    python3 scripts/bench_compare.py lqf.json torch.json > table.md

Figures are matched by name. GFLOP/s of PyTorch's training passes use our FLOP count for the
same work (the torch script reports times only there). The last column is our speed as a
fraction of PyTorch's (its time over ours): 1.00 is parity, 0.25 is four times slower.
"""
import json
import sys


def load(path):
    try:
        with open(path) as f:
            d = json.load(f)
        return d["adapter"], {fig["name"]: fig for fig in d["figures"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        sys.exit(f"{path}: not a bench --json output ({type(e).__name__}: {e})")


def table(ours_path, peer_path):
    ours_adapter, ours = load(ours_path)
    peer_adapter, peer = load(peer_path)
    lines = [
        f"Ours: {ours_adapter}. Peer: {peer_adapter}.",
        "",
        "| work | ours ms | PyTorch ms | ours GFLOP/s | PyTorch GFLOP/s | ours images/s | PyTorch images/s | ours / PyTorch speed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    img = lambda f: f"{f['images_per_s']:.1f}" if "images_per_s" in f else "–"
    for name, o in ours.items():
        p = peer.get(name)
        if p is None:
            lines.append(f"| {name} | {o['ms']:.3f} | – | {o['gflops']:.1f} | – | {img(o)} | – | – |")
            continue
        gflop = p["gflop"] or o["gflop"]
        lines.append(
            f"| {name} | {o['ms']:.3f} | {p['ms']:.3f} | {o['gflops']:.1f} | {gflop / (p['ms'] / 1e3):.1f} "
            f"| {img(o)} | {img(p)} | {p['ms'] / o['ms']:.2f} |"
        )
    missing = [n for n in peer if n not in ours]
    if missing:
        lines += ["", "Only in the peer's run: " + ", ".join(missing) + "."]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(table(sys.argv[1], sys.argv[2]))
