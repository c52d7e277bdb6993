"""The floor of the metrics at a given sample size: held-out real images scored like a generator.

    python scripts/real_floor.py --resolution 64 [--data DIR] [--held-out 1000] [--seeds 0 1] [--out floor.json]

For each seed, a uniformly random, seeded subset of ``--held-out`` real images (``progan.metrics.floor``)
plays the generated set against all the other real images, with the same Inception features,
statistics and metric code as ``evaluate.py`` (and its real-feature cache: run either first and the
other reuses the features). Not "the last N by name": OpenMoji stored by codepoint ends in a different
distribution (skin tones, extras), and that split scored FID 51.3 where a random one scores about 18.

The JSON holds the mean over the seeds at the top (the keys ``scripts/model_card.py`` reads) and each
seed's row under ``per_seed``. A generator of this data cannot be expected to score below this row at
this sample size; FID from 1,000 images is biased upward, so compare with this, not with published fid50k.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPLIT = "uniformly random held-out subset per seed: torch.randperm(N, generator=torch.Generator().manual_seed(seed))"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, required=True)
    parser.add_argument("--data", default="", help="dataset dir; empty = built-in OpenMoji")
    parser.add_argument("--held-out", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="one random split per seed")
    parser.add_argument("--inception", default=None)
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)

    import torch
    from accelerate import Accelerator

    import data_prep
    from progan.hub import cache_root
    from progan.metrics.evaluation import dataset_key
    from progan.metrics.features import real_statistics
    from progan.metrics.floor import real_floor
    from progan.metrics.inception import load_feature_network

    started = time.time()
    acc = Accelerator(cpu=not torch.cuda.is_available())
    data = args.data or str(data_prep.builtin_openmoji_for_processes(args.resolution, acc))
    dataset = data_prep.open_dataset(data, args.resolution)
    # precision/recall use each side's k = 3 nearest neighbours: both sides need at least 4 images
    if not 4 <= args.held_out <= len(dataset) - 4:
        print(f"error: --held-out must leave at least 4 images on each side of {len(dataset)}", file=sys.stderr)
        return 2
    network = load_feature_network(args.inception, device=acc.device)
    # the same cache entry evaluate.py uses for "all real images of this dataset at this resolution"
    stats = real_statistics(dataset, network, dataset_key=dataset_key(args.data, dataset),
                            cache_dir=cache_root() / "fid-stats", progress=True)
    rows = [{"seed": seed, **real_floor(stats.features, num_held_out=args.held_out, seed=seed)}
            for seed in args.seeds]
    keys = ("fid", "kid", "precision", "recall")
    summary = {"data": data, "resolution": args.resolution, "num_reference": len(dataset) - args.held_out,
               "num_held_out": args.held_out, "split": SPLIT,
               **{k: sum(row[k] for row in rows) / len(rows) for k in keys}, "per_seed": rows,
               "seconds": round(time.time() - started, 1), "torch_threads": torch.get_num_threads(),
               "device": str(acc.device)}
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
