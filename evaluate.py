"""Evaluate a generator: FID, KID and precision/recall against a dataset (papers: progan/evaluation.py).

    python evaluate.py --weights weights/stylegan_lite-openmoji --num 1000 [--data DIR] [--out metrics.json]
    accelerate launch evaluate.py ...      # each process embeds its share; features are gathered

Generated sample i uses latent i of --seed; the real images are a seeded random --num-real of the
dataset at the generator's resolution (default: all of them, like NVIDIA's fid50k_full). Real-image statistics are cached under $GAN_STUDIO_CACHE/fid-stats (default
~/.cache/gan-studio/fid-stats), keyed by dataset contents, resolution, count and network. The
feature network comes from --inception, $GAN_STUDIO_INCEPTION or the `metrics` extra; nothing is
downloaded unless --weights is a URL and --allow-remote-weights is given.

Memorization check instead of the metrics (progan/metrics/nearest.py), one process:

    python evaluate.py --weights weights/progan-openmoji --nearest --num 1000 --figure nearest.png

each sample's nearest training image in the same Inception features (every real image; their
features are cached with the FID statistics), the fraction of samples closer than the median
real-to-real nearest-neighbour distance, and a figure of the --pairs closest (generated | real) pairs.

A class-conditional generator's sample i has a class drawn (seeded) from the dataset's labels.
`--per-class` also scores every class on its own (progan/metrics/per_class.py, the intra-class FID of
Miyato & Koyama 2018, section 5.1): --num samples of the class against the dataset's images of that
class (at most --num-real of them); the JSON gets "per_class" and a table goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


PR_MIN = 4  # precision/recall (k = 3 nearest neighbours) need more than 3 images on each side


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="exported model: dir, .safetensors, URL or hf://")
    parser.add_argument("--data", default="", help="dataset dir or image folder; empty = built-in OpenMoji")
    parser.add_argument("--num", type=int, default=10000, help="generated images (default: 10000)")
    parser.add_argument("--num-real", type=int, default=0, help="real images (a seeded random N of the dataset); 0 = all")
    parser.add_argument("--batch", type=int, default=64, help="images per feature-network batch")
    parser.add_argument("--psi", type=float, default=1.0, help="truncation psi (StyleGAN-lite only)")
    parser.add_argument("--metrics", default="fid,kid,pr", help="comma list of fid, kid, pr")
    parser.add_argument("--seed", type=int, default=0, help="latent seed: sample i uses latent i of this seed")
    parser.add_argument("--inception", default=None, help="path to the Inception TorchScript file")
    parser.add_argument("--allow-remote-weights", action="store_true", help="allow URL / hf:// weights")
    parser.add_argument("--background", default="255,255,255", metavar="R,G,B",
                        help="RGBA models/data: composite onto this colour before the RGB feature network "
                             "(default white; grayscale is replicated to RGB)")
    parser.add_argument("--per-class", action="store_true",
                        help="conditional models: also FID/KID per class, against that class's real images")
    parser.add_argument("--out", default="", help="also write the results as JSON here")
    parser.add_argument("--nearest", action="store_true",
                        help="memorization check: nearest training image of each sample (instead of the metrics)")
    parser.add_argument("--pairs", type=int, default=16, help="--nearest: closest pairs drawn in the figure")
    parser.add_argument("--figure", default="nearest.png", help="--nearest: where the figure of pairs goes")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    if args.nearest and args.num_real:
        print("error: --nearest searches every training image (a copy of one left out would be missed); "
              "drop --num-real", file=sys.stderr)
        return 2
    if args.nearest and (args.pairs < 1 or Path(args.figure).suffix.lower() not in (".png", ".jpg", ".webp")):
        print("error: --pairs must be >= 1 and --figure must end in .png, .jpg or .webp", file=sys.stderr)
        return 2
    if args.num < 2 or args.num_real < 0 or args.num_real == 1 or args.batch < 1:
        print("error: --num must be >= 2, --num-real 0 or >= 2, and --batch >= 1", file=sys.stderr)
        return 2
    if not metrics or set(metrics) - {"fid", "kid", "pr"}:
        print(f"error: --metrics must be a comma list of fid, kid, pr; got {args.metrics!r}", file=sys.stderr)
        return 2
    # precision/recall use each side's k = 3 nearest neighbours besides the row itself: 4 images per side
    if "pr" in metrics and not args.nearest and (args.num < PR_MIN or 0 < args.num_real < PR_MIN):
        print(f"error: --metrics pr needs --num and --num-real >= {PR_MIN} (3 nearest neighbours); "
              "score fewer with --metrics fid,kid", file=sys.stderr)
        return 2
    try:
        background = tuple(int(v) for v in args.background.split(","))
        if len(background) != 3 or not all(0 <= v <= 255 for v in background):
            raise ValueError
    except ValueError:
        print(f"error: --background must be R,G,B with values 0..255, got {args.background!r}", file=sys.stderr)
        return 2
    # the scheme in any case: resolve_weights reads HTTPS:// and HF:// as remote too
    remote = args.weights.lower().startswith(("http://", "https://", "hf://"))
    if remote and not args.allow_remote_weights:
        print("error: --weights is remote; pass --allow-remote-weights to download it", file=sys.stderr)
        return 2

    import torch
    from accelerate import Accelerator

    import data_prep
    from families import load_generator
    from progan.metrics.evaluation import dataset_key, evaluate_generator
    from progan.hub.export import PretrainedError
    from progan.hub import cache_root
    from progan.metrics.inception import FeatureNetworkError, load_feature_network

    acc = Accelerator(cpu=not torch.cuda.is_available())
    try:
        generator = load_generator(args.weights, device=acc.device)
        network = load_feature_network(args.inception, device=acc.device)
        resolution = generator.config.resolution
        data = args.data or str(data_prep.builtin_openmoji_for_processes(resolution, acc))
        dataset = data_prep.open_dataset(data, resolution)
    except (FeatureNetworkError, PretrainedError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    num_real = min(args.num_real or len(dataset), len(dataset))
    if "pr" in metrics and not args.nearest and num_real < PR_MIN:
        print(f"error: --metrics pr needs {PR_MIN} real images and the dataset has {num_real}; "
              "score it with --metrics fid,kid", file=sys.stderr)
        return 2
    family = generator.config.family
    kwargs = {"psi": args.psi} if args.psi != 1.0 else {}
    if kwargs and family != "stylegan_lite":
        print("error: --psi applies to StyleGAN-lite generators only", file=sys.stderr)
        return 2
    if args.per_class and not generator.config.class_names:
        print("error: --per-class needs a class-conditional generator (this one has no classes)", file=sys.stderr)
        return 2
    if args.per_class and tuple(getattr(dataset, "class_names", ())) != generator.config.class_names:
        print(f"error: --per-class: the dataset's classes {list(getattr(dataset, 'class_names', ()))} are not the "
              f"generator's {list(generator.config.class_names)}", file=sys.stderr)
        return 2
    start = time.time()
    if args.nearest:
        return _nearest(args, acc, generator, network, dataset, dataset_key(args.data, dataset),
                        cache_root() / "fid-stats", data=data, start=start)
    results = evaluate_generator(generator, dataset, network, accelerator=acc, num=args.num, num_real=num_real,
                                 dataset_key=dataset_key(args.data, dataset), cache_dir=cache_root() / "fid-stats",
                                 batch_size=args.batch, seed=args.seed, generator_kwargs=kwargs, metrics=metrics,
                                 progress=acc.is_local_main_process, background=background)
    per_class = None
    if args.per_class:
        from progan.metrics.per_class import evaluate_per_class

        per_class = evaluate_per_class(generator, dataset, network, accelerator=acc, num=args.num,
                                       num_real=args.num_real or None, dataset_key=dataset_key(args.data, dataset),
                                       metrics=tuple(m for m in metrics if m != "pr") or ("fid",),
                                       cache_dir=cache_root() / "fid-stats", batch_size=args.batch, seed=args.seed,
                                       generator_kwargs=kwargs, background=background)
    if not acc.is_main_process:
        return 0
    summary = {"weights": str(args.weights), "family": family, "data": data, "resolution": resolution,
               "num_generated": args.num, "num_real": num_real, "psi": args.psi, "seed": args.seed,
               "image_channels": generator.config.image_channels, "channels_real": getattr(dataset, "channels", 3),
               **({"background": list(background)} if 4 in (generator.config.image_channels,
                                                           getattr(dataset, "channels", 3)) else {}),
               "processes": acc.num_processes, "device": str(acc.device), "seconds": round(time.time() - start, 1),
               **{k: float(v) for k, v in results.items()}}
    if per_class is not None:
        summary["per_class"] = per_class
        print(per_class_table(results, per_class), file=sys.stderr)
    _report(summary, args.out)
    return 0


def _report(summary: dict, out: str) -> None:
    """Print the summary as JSON, and write it to ``out`` too when given."""
    text = json.dumps(summary, indent=2)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")


def _nearest(args, acc, generator, network, dataset, key: str, cache_dir: Path, *, data: str, start: float) -> int:
    """``--nearest``: the memorization check (progan.metrics.nearest) against every training image (their
    features are the FID cache's full-set entry), its summary and figure."""
    from progan.metrics.features import real_statistics
    from progan.metrics.nearest import check_generator, pairs_figure

    if acc.num_processes > 1:
        print("error: --nearest runs in one process; run it with python, not accelerate launch", file=sys.stderr)
        return 2
    kwargs = {"psi": args.psi} if args.psi != 1.0 else {}
    generator.eval()
    real = real_statistics(dataset, network, dataset_key=key, num=len(dataset), cache_dir=cache_dir,
                           batch_size=args.batch, device=acc.device, progress=True).features
    result, closest = check_generator(generator, network, real, num=args.num, pairs=args.pairs, batch_size=args.batch,
                                      seed=args.seed, generator_kwargs=kwargs, progress=True)
    pairs = []
    for i in result.closest(args.pairs):
        j = int(result.indices[i])
        real_image = dataset[j][0] if isinstance(dataset[j], (tuple, list)) else dataset[j]  # [3, R, R] uint8
        pairs.append((closest[i], real_image.permute(1, 2, 0).numpy(), f"#{i} -> real {j}: {float(result.distances[i]):.1f}"))
    figure = Path(args.figure)
    figure.parent.mkdir(parents=True, exist_ok=True)
    pairs_figure(pairs).save(figure)
    summary = {"weights": str(args.weights), "family": generator.config.family, "data": data,
               "resolution": generator.config.resolution, "psi": args.psi, "seed": args.seed,
               **result.summary(), "figure": str(figure), "seconds": round(time.time() - start, 1)}
    _report(summary, args.out)
    return 0


def per_class_table(overall: dict[str, float], per_class: dict[str, dict]) -> str:
    """Overall and per-class FID/KID as a text table (one row per class)."""
    rows = [f"{'class':<28} {'reals':>6} {'FID':>9} {'KID':>9}",
            f"{'(all, labels as the data)':<28} {'':>6} {overall.get('fid', float('nan')):>9.3f} "
            f"{overall.get('kid', float('nan')):>9.5f}"]
    for name, row in per_class.items():
        if "skipped" in row:
            rows.append(f"{name[:28]:<28} {row['num_real']:>6} skipped: {row['skipped']}")
        else:
            rows.append(f"{name[:28]:<28} {row['num_real']:>6} {row.get('fid', float('nan')):>9.3f} "
                        f"{row.get('kid', float('nan')):>9.5f}")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
