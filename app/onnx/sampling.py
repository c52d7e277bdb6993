"""Sample from an exported ONNX generator (``app.onnx.export``) with onnxruntime on the CPU.

Seeds mean what they mean everywhere in the app (``app.sampling``): z for seed ``s`` is drawn from
``torch.Generator("cpu").manual_seed(s)``, and in a graph with noise inputs, "random" noise follows
z in the same stream, so the ONNX file and the PyTorch weights give the same pixels for the same
seeds (up to float rounding). Only NumPy arrays go into the session.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from progan.images import images_to_uint8
from ..sampling import seed_latents

__all__ = ["OnnxModel"]


class OnnxModel:
    """An exported generator: ``metadata`` (family, resolution, latent_dim, noise, opset) and ``images()``."""

    def __init__(self, path: str | Path) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise ValueError('onnxruntime is not installed: pip install -e ".[onnx]"') from None
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path}: no such ONNX file")
        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for foreign files
            raise ValueError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from None
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        if "family" not in self.metadata or "latent_dim" not in self.metadata:
            raise ValueError(f"{path}: no GAN Studio metadata (export it with python -m app.export_onnx)")
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.resolution = int(self.metadata["resolution"])
        self.latent_dim = int(self.metadata["latent_dim"])
        self.class_names: tuple[str, ...] = tuple(json.loads(self.metadata.get("class_names", "[]")))

    def class_label(self, name: str | None) -> int | None:
        """Index of class ``name`` of a conditional graph (the first when None); None for an unconditional one."""
        from progan.conditioning import class_index

        if not self.class_names:
            return None if name is None else class_index((), name)
        return 0 if name is None else class_index(self.class_names, name)

    def _noise(self, seeds: Sequence[int]) -> dict[str, np.ndarray]:
        names = [n for n in self.inputs if n.startswith("noise_")]
        sizes = [self.session.get_inputs()[self.inputs.index(n)].shape[-1] for n in names]
        per_seed = []
        for s in seeds:  # z first, then one map per layer, as app.sampling.seed_noise
            rng = torch.Generator("cpu").manual_seed(int(s))
            torch.randn(1, self.latent_dim, generator=rng)
            per_seed.append([torch.randn(1, 1, r, r, generator=rng) for r in sizes])
        return {name: torch.cat(maps).numpy() for name, maps in zip(names, zip(*per_seed))}

    def images(self, seeds: Sequence[int], *, psi: float = 1.0, batch_size: int = 16,
               label: int | None = None) -> np.ndarray:
        """One image per seed: uint8 ``[N, R, R, 3]`` (the app's rounding); ``label``: the class of a
        conditional graph (its ``labels`` input)."""
        if ("labels" in self.inputs) != (label is not None):
            raise ValueError("this graph is conditional: give a class" if label is None
                             else "this graph is unconditional: it takes no class")
        out = []
        for start in range(0, len(seeds), batch_size):
            chunk = list(seeds[start:start + batch_size])
            feeds = {"z": seed_latents(chunk, self.latent_dim).numpy()}
            if label is not None:
                feeds["labels"] = np.full(len(chunk), label, dtype=np.int64)
            if "psi" in self.inputs:
                feeds["psi"] = np.array(psi, dtype=np.float32)
            feeds.update(self._noise(chunk))
            images = self.session.run(["images"], feeds)[0]                    # [B, 3, R, R]
            out.append(images_to_uint8(torch.from_numpy(images)).permute(0, 2, 3, 1).numpy())  # the app's rounding
        return np.concatenate(out) if out else np.zeros((0, self.resolution, self.resolution, 3), np.uint8)

    def describe(self) -> str:
        return (f"{self.metadata['family']} {self.resolution}x{self.resolution}, opset {self.metadata.get('opset')}, "
                f"inputs {', '.join(self.inputs)}, noise {self.metadata.get('noise')}; "
                f"{json.loads(self.metadata.get('inputs', '[]')) == self.inputs and 'metadata ok' or 'inputs differ'}")
