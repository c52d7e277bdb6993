"""The floor of the metrics at a given sample size: held-out real images scored like a generator.

    python scripts/real_floor.py --resolution 64 [--data DIR] [--held-out 1000] [--out floor.json]

The last ``--held-out`` real images play the generated set against all the other real images, with the
same Inception features, statistics and metric code as ``evaluate.py`` (and its real-feature cache:
run either first and the other reuses the features). A generator cannot be expected to score below
this row; FID from 1,000 images is biased upward, so compare with this, not with published fid50k.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, required=True)
    parser.add_argument("--data", default="", help="dataset dir; empty = built-in OpenMoji")
    parser.add_argument("--held-out", type=int, default=1000)
    parser.add_argument("--inception", default=None)
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)

    import torch
    from accelerate import Accelerator

    import data_prep
    from progan.hub import cache_root
    from progan.metrics.evaluation import dataset_key
    from progan.metrics.features import compute_metrics, real_statistics
    from progan.metrics.inception import load_feature_network

    acc = Accelerator(cpu=not torch.cuda.is_available())
    data = args.data or str(data_prep.builtin_openmoji_for_processes(args.resolution, acc))
    dataset = data_prep.open_dataset(data, args.resolution)
    if not 2 <= args.held_out <= len(dataset) - 2:
        print(f"error: --held-out must leave at least 2 images on each side of {len(dataset)}", file=sys.stderr)
        return 2
    network = load_feature_network(args.inception, device=acc.device)
    # the same cache entry evaluate.py uses for "all real images of this dataset at this resolution"
    stats = real_statistics(dataset, network, dataset_key=dataset_key(args.data, dataset),
                            cache_dir=cache_root() / "fid-stats", progress=True)
    features = stats.features
    reference, held_out = features[:-args.held_out], features[-args.held_out:]
    results = compute_metrics(reference, held_out)
    summary = {"data": data, "resolution": args.resolution, "num_reference": len(reference),
               "num_held_out": len(held_out), **{k: float(v) for k, v in results.items()}}
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
