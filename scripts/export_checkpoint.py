"""Export the EMA generator of a training checkpoint, optionally at a lower (already trained) resolution.

    python scripts/export_checkpoint.py runs/x/checkpoints/ckpt-000040.000 --out weights/x [--resolution 16]

A progressive run stopped before its last stage has trained only the lower resolutions; exporting at
the stage it reached gives a usable model instead of one whose top blocks are untrained.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from families import get_family  # noqa: E402
from progan.hub.export import truncate_to_resolution  # noqa: E402
from progan.training.options import TrainConfig  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--resolution", type=int, default=0, help="export at this resolution (default: full)")
    parser.add_argument("--note", default="", help="free text stored in the summary (hardware, command, ...)")
    args = parser.parse_args()
    state = torch.load(args.checkpoint / "state.pt", map_location="cpu", weights_only=True)
    train = json.loads(state["train_config"])
    config = TrainConfig(**train)  # fields added since the checkpoint take their defaults, as on resume
    family = get_family(state["family"])
    generator = family.generator_cls(family.preset(train["preset"]))
    generator.load_state_dict(state["generator_ema"])
    if args.resolution:
        generator = truncate_to_resolution(generator, args.resolution)
    summary = {"preset": train["preset"], "family": family.name, "images_seen": state["images_seen"],
               "kimg": round(state["images_seen"] / 1000, 3), "steps": state["step"],
               "exported_resolution": generator.config.resolution, "data": train["data"] or "openmoji",
               "loss": config.objective, "stabilization": config.stabilization(), "note": args.note}
    path = generator.save_pretrained(args.out, summary=summary)
    print(f"wrote {path} ({generator.config.resolution}px, {summary['kimg']} kimg)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
