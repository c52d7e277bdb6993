"""``python -m app.export_onnx --weights W --out model.onnx``: a generator as one ONNX graph.

    python -m app.export_onnx --weights weights/stylegan_lite-openmoji --out sg.onnx
    python -m app.export_onnx --weights weights/stylegan_lite-openmoji --noise inputs --out sg-noise.onnx
    python -m app.export_onnx --weights weights/progan-openmoji --out progan.onnx
    python -m app.generate --onnx sg.onnx --seeds 0-15 --psi 0.7 --out grid.png    # check it, no PyTorch code

What the graph computes (the inference path of Karras et al. 2018 / 2019, nothing else):

- ProGAN: ``z [N, latent_dim] -> images [N, 3, R, R]`` at full resolution (alpha = 1).
- StyleGAN-lite: ``z [N, latent_dim], psi [] -> images``: mapping, truncation of every layer
  towards ``w_avg`` with run-time ``psi`` (section 3 / appendix B; the cutoff is fixed at export,
  ``--cutoff``), synthesis. Noise (section 2, "B"): ``--noise const`` (default) bakes the model's
  constant noise maps into the graph (the app's "fixed"); ``--noise inputs`` adds one input
  ``noise_i [N, 1, r, r]`` per layer so the caller supplies it (random noise = feed Gaussians);
  ``--noise none`` drops it.
- Class-conditional models (``train.py --cond``) take ``labels [N]`` (int64 class indices) as the
  second input, after z; the class names are in the metadata (``class_names``, JSON).
- Batch size is dynamic (the ``batch`` axis of every input and the output). Outputs are float
  images in about [-1, 1]; ``(x * 127.5 + 128)`` clipped to [0, 255] gives the app's bytes.

Not in the graph: style mixing (two z and a crossover), a per-layer cutoff chosen at run time, the
progressive-growing stage/alpha, random noise drawn inside the graph (it would make the output
non-deterministic), the W-space entry point (projected latents) and training. The opset is named
in the file's metadata (``opset``), with the family, resolution, latent size and noise mode, so
``app.generate --onnx`` knows how to feed it. Exported with PyTorch's ``torch.export``-based exporter
(``dynamo=True``, needs ``onnxscript``): it keeps the batch axis symbolic through every reshape.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch import nn

__all__ = ["OPSET", "NOISE_MODES", "OnnxGenerator", "OnnxConditionalGenerator", "export_onnx", "main"]

OPSET = 18  # the lowest opset the torch.export-based exporter implements without conversion
NOISE_MODES = ("const", "inputs", "none")


class OnnxGenerator(nn.Module):
    """The exported computation: ``(z, [psi], [noise_0..]) -> images [N, 3, R, R]`` (calls the generator only)."""

    def __init__(self, generator: nn.Module, *, noise: str = "const", cutoff: int | None = None) -> None:
        super().__init__()
        if noise not in NOISE_MODES:
            raise ValueError(f"noise must be one of {', '.join(NOISE_MODES)}; got {noise!r}")
        self.generator = generator
        self.stylegan = generator.config.family == "stylegan_lite"
        self.noise = noise
        self.cutoff = cutoff
        if cutoff is not None and not self.stylegan:
            raise ValueError("cutoff is a StyleGAN-lite truncation option; a ProGAN has no style layers")
        if cutoff is not None and self.stylegan and not 0 <= cutoff <= generator.num_ws:
            raise ValueError(f"cutoff must be between 0 and {generator.num_ws}, got {cutoff}")

    def forward(self, z: torch.Tensor, psi: torch.Tensor | None = None, *noise: torch.Tensor) -> torch.Tensor:
        g = self.generator
        if not self.stylegan:
            return g(z)
        ws = g.truncate(g.broadcast(g.mapping(z)), psi=psi, cutoff=self.cutoff)   # [N, num_ws, w_dim]
        if self.noise == "inputs":
            return g.synthesis(ws, noise=list(noise))
        return g.synthesis(ws, noise_mode=self.noise)

    def input_names(self) -> list[str]:
        if not self.stylegan:
            return ["z"]
        layers = 2 * self.generator.config.num_stages
        return ["z", "psi", *([f"noise_{i}" for i in range(layers)] if self.noise == "inputs" else [])]

    def example_inputs(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        g = self.generator
        z = torch.randn(batch, g.config.latent_dim)
        if not self.stylegan:
            return (z,)
        noise = tuple(g.synthesis.make_noise(batch)) if self.noise == "inputs" else ()
        return (z, torch.tensor(0.7), *noise)


class OnnxConditionalGenerator(OnnxGenerator):
    """A conditional generator's graph: ``(z, labels, [psi], [noise_0..]) -> images``."""

    def forward(self, z: torch.Tensor, labels: torch.Tensor, psi: torch.Tensor | None = None,
                *noise: torch.Tensor) -> torch.Tensor:
        g = self.generator
        if not self.stylegan:
            return g(z, labels=labels)
        ws = g.truncate(g.broadcast(g.map(z, labels)), psi=psi, cutoff=self.cutoff)  # [N, num_ws, w_dim]
        if self.noise == "inputs":
            return g.synthesis(ws, noise=list(noise))
        return g.synthesis(ws, noise_mode=self.noise)

    def input_names(self) -> list[str]:
        names = super().input_names()
        return [names[0], "labels", *names[1:]]

    def example_inputs(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        example = super().example_inputs(batch)
        return (example[0], torch.arange(batch) % self.generator.config.num_classes, *example[1:])


def export_onnx(generator: nn.Module, path: str | Path, *, noise: str = "const", cutoff: int | None = None,
                opset: int = OPSET, metadata: dict | None = None) -> Path:
    """Write ``generator`` (on CPU, eval mode) to ``path`` as ONNX and return the path."""
    import warnings

    import onnx

    if opset < OPSET:  # the exporter would write OPSET anyway (its down-conversion fails) under a false label
        raise ValueError(f"opset {opset} is below {OPSET}, the lowest the torch.export-based exporter writes; "
                         f"use --opset {OPSET} or higher")
    generator = generator.to("cpu").eval()
    conditional = bool(generator.config.num_classes)
    module = (OnnxConditionalGenerator if conditional else OnnxGenerator)(generator, noise=noise, cutoff=cutoff)
    names = module.input_names()
    batch = torch.export.Dim("batch", min=1, max=4096)
    example = module.example_inputs()
    # torch.export's dynamic shapes: the batch axis of z (and labels) and every noise map, psi is a scalar
    head: tuple = ({0: batch}, {0: batch}) if conditional else ({0: batch},)
    shapes: tuple = head if not module.stylegan else (*head, None)
    if len(example) > len(shapes):  # *noise arrives as one tuple
        shapes = (*shapes, tuple({0: batch} for _ in example[len(shapes):]))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, example, input_names=names, output_names=["images"],
                                    dynamic_shapes=shapes, opset_version=opset, dynamo=True,
                                    external_data=False, verbose=False)
    model = program.model_proto
    written = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if written != opset:  # never a file whose metadata names another opset than its graph uses
        raise ValueError(f"the exporter wrote opset {written}, not the requested {opset}; use --opset {OPSET}")
    config = generator.config
    info = {"family": config.family, "resolution": str(config.resolution), "latent_dim": str(config.latent_dim),
            "noise": noise if module.stylegan else "none", "cutoff": "" if cutoff is None else str(cutoff),
            "opset": str(opset), "inputs": json.dumps(names),
            **({"class_names": json.dumps(list(config.class_names))} if conditional else {}), **{k: str(v) for k, v in (metadata or {}).items()}}
    for key, value in info.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def module_names(generator: nn.Module, noise: str) -> list[str]:
    cls = OnnxConditionalGenerator if generator.config.num_classes else OnnxGenerator
    return cls(generator, noise=noise).input_names()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.export_onnx", description=__doc__.splitlines()[0])
    parser.add_argument("--weights", metavar="PATH|URL|hf://org/repo[/file]",
                        help="generator (default: the bundled StyleGAN-lite weights, else ProGAN)")
    parser.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    parser.add_argument("--noise", choices=NOISE_MODES, default="const",
                        help="StyleGAN-lite noise: baked constant maps, explicit inputs, or none")
    parser.add_argument("--cutoff", type=int, default=None, help="truncate style layers below this one (default: all)")
    parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default and lowest {OPSET})")
    args = parser.parse_args(argv)
    if args.out.suffix.lower() != ".onnx":
        parser.error(f"--out must end in .onnx, got {str(args.out)!r}")
    try:
        from families import load_generator

        from ..models import launch_sources

        source = args.weights or next(iter(launch_sources(None).values()))
        generator = load_generator(source)
        path = export_onnx(generator, args.out, noise=args.noise, cutoff=args.cutoff, opset=args.opset,
                           metadata={"weights": source})
    except ImportError as exc:
        print(f"error: {exc.name or exc} is not installed: pip install -e \".[onnx]\"", file=sys.stderr)
        return 2
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    config = generator.config
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB): {config.family} {config.resolution}x{config.resolution}, "
          f"opset {args.opset}, inputs {', '.join(module_names(generator, args.noise))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
