"""Benchmark embedding throughput of the aligned model (images/s and texts/s).

Measures, on the current machine (CPU by default, a GPU with ``--device cuda``):

* image embedding from in-memory uint8 RGB arrays (preprocessing included),
* image embedding of already-preprocessed tensors (the network alone),
* text embedding (MiniLM + head) of short queries.

Prints a Markdown table; ``--out FILE`` also writes it. Not a test: timings
depend on the machine and on whatever else runs on it.

    python benchmarks/bench_embedding.py                       # shipped model, all CPU threads
    python benchmarks/bench_embedding.py --threads 2 --n 2048
    python benchmarks/bench_embedding.py --model runs/galclip-v1/model --device cuda
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np


def _best_rate(fn, n_items: int, repeats: int) -> float:
    """Items per second of the fastest of ``repeats`` runs (after one warm-up)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n_items / best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model name or directory (default: the shipped model)")
    parser.add_argument("--n", type=int, default=1024, help="images per run")
    parser.add_argument("--texts", type=int, default=512, help="texts per run")
    parser.add_argument("--size", type=int, default=160, help="side of the input images in pixels")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None, help="also write the table to this file")
    args = parser.parse_args(argv)

    import torch

    from astro_semsearch.model import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model).to(args.device)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.n, args.size, args.size, 3), dtype=np.uint8)
    tensor = torch.rand(args.n, 3, model.image_size, model.image_size, device=args.device)
    words = ["spiral", "barred", "ring", "merger", "edge-on", "smooth", "elliptical", "lens", "arc", "dust lane",
             "tidal tails", "bulge", "irregular", "disturbed", "blue", "red"]
    texts = [" ".join(rng.choice(words, size=rng.integers(2, 7))) + " galaxy" for _ in range(args.texts)]

    def net_only():
        with torch.no_grad():
            for s in range(0, args.n, args.batch_size):
                model.encode_image_tensor(tensor[s:s + args.batch_size])
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()

    rows = [
        (f"images, uint8 RGB {args.size}x{args.size} (preprocess + network)",
         _best_rate(lambda: model.embed_images(images, batch_size=args.batch_size), args.n, args.repeats)),
        (f"images, preprocessed {model.image_size}x{model.image_size} tensors (network only)",
         _best_rate(net_only, args.n, args.repeats)),
        ("texts, short queries (MiniLM + head)",
         _best_rate(lambda: model.embed_text(texts, batch_size=args.batch_size), args.texts, args.repeats)),
    ]
    device = args.device
    if device.startswith("cuda"):
        device += f" ({torch.cuda.get_device_name()})"
    header = [
        f"Model `{model.name}` (sha256 {model.fingerprint[:12]}), dim {model.dim}, torch {torch.__version__}, "
        f"device {device}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"batch {args.batch_size}, best of {args.repeats}.",
        "",
        "| what | items/s |",
        "|---|---:|",
    ]
    table = "\n".join(header + [f"| {what} | {rate:,.0f} |" for what, rate in rows]) + "\n"
    sys.stdout.write(table)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
