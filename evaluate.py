"""Evaluate a generator: FID, KID and precision/recall against a dataset (section refs in progan/metrics.py).

    python evaluate.py --weights weights/stylegan_lite-openmoji --num 1000 [--data DIR] [--out metrics.json]
    accelerate launch evaluate.py ...      # each process generates its share; features are gathered

Real-image statistics are cached per dataset (checksum, resolution, count, network). The feature
network comes from --inception, $GAN_STUDIO_INCEPTION or the `metrics` extra; nothing is downloaded.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="dir, .safetensors, URL or hf://")
    parser.add_argument("--data", default="", help="dataset dir or image folder; empty = built-in OpenMoji")
    parser.add_argument("--num", type=int, default=10000, help="generated (and real) images")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--psi", type=float, default=1.0, help="truncation psi (StyleGAN-lite)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--inception", default=None, help="path to the Inception TorchScript file")
    parser.add_argument("--out", default="", help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.num < 2 or args.batch < 1:
        print("error: --num must be >= 2 and --batch >= 1", file=sys.stderr)
        return 2

    import torch
    from accelerate import Accelerator

    import data_prep
    from families import load_generator
    from progan.feature_stats import compute_metrics, generated_features, real_statistics
    from progan.inception import FeatureNetworkError, load_feature_network

    acc = Accelerator(cpu=not torch.cuda.is_available())
    try:
        generator = load_generator(args.weights, device=acc.device)
        network = load_feature_network(args.inception, device=acc.device)
        resolution = generator.config.resolution
        data = args.data or str(data_prep.builtin_openmoji(resolution, progress=acc.is_main_process))
        dataset = data_prep.open_dataset(data, resolution)
    except (FeatureNetworkError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    num = min(args.num, len(dataset))
    manifest = getattr(dataset, "manifest", None) or {}
    key = json.dumps({"data": str(Path(data).resolve()), "checksums": manifest.get("checksums")}, sort_keys=True)
    real = None
    if acc.is_main_process:
        real = real_statistics(dataset, network, dataset_key=key, num=num, batch_size=args.batch,
                               device=acc.device, progress=True)
    indices = list(range(acc.process_index, num, acc.num_processes))
    fake = generated_features(generator, network, num=num, batch_size=args.batch, seed=args.seed,
                              device=acc.device, truncation_psi=args.psi, indices=indices,
                              progress=acc.is_local_main_process)
    # pad to equal length so gather works, then restore the global order i = rank + k * world
    per_rank = -(-num // acc.num_processes)
    padded = torch.zeros(per_rank, fake.shape[1], device=acc.device)
    padded[: fake.shape[0]] = fake.to(acc.device)
    gathered = acc.gather(padded).view(acc.num_processes, per_rank, -1).transpose(0, 1).reshape(-1, fake.shape[1])
    if not acc.is_main_process:
        return 0
    fake_all = gathered[:num].cpu()
    results = compute_metrics(real.features, fake_all, real_stats=(real.mu, real.sigma), seed=args.seed)
    summary = {"weights": str(args.weights), "data": data, "num": num, "psi": args.psi,
               "resolution": resolution, **{k: float(v) for k, v in results.items()}}
    print(json.dumps(summary, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
