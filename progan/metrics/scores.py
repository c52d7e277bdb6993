"""Sample-quality metrics computed from feature vectors (pure numerics, no networks).

Papers:
    FID  -- Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local
            Nash Equilibrium", section 3 (Frechet distance between Gaussians fitted to features).
    KID  -- Binkowski et al. 2018, "Demystifying MMD GANs", section 3 / appendix D (unbiased MMD^2
            with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over subsets).
    P/R  -- Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
            Generative Models", section 2 (k-NN hyperspheres approximate each manifold).

Public API (features are [N, D] numpy arrays or torch tensors; everything is computed in float64
except precision/recall, whose pairwise distances run in float32 batches as NVIDIA's code does):

    feature_statistics(features) -> (mu [D], sigma [D, D])
    frechet_distance(mu1, sigma1, mu2, sigma2, *, method="eigh") -> float   # or "sqrtm"
    kernel_inception_distance(real, fake, *, num_subsets=100, max_subset_size=1000, seed=0) -> float
    precision_recall(real, fake, *, k=3, batch_size=10000, device=None) -> (precision, recall)

The features themselves come from `progan.metrics.inception` / `progan.metrics.features`.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch

ArrayLike = np.ndarray | torch.Tensor


def _to_float64(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _check_features(x: np.ndarray, name: str) -> None:
    if x.ndim != 2:
        raise ValueError(f"{name} must be [N, D] features, got shape {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples, got {x.shape[0]}")


def feature_statistics(features: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased covariance [D, D] (float64) of features [N, D]."""
    x = _to_float64(features)
    _check_features(x, "features")
    # rowvar=False: samples are rows. np.cov divides by N-1 like NVIDIA's and pytorch-fid's code.
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix; round-off negatives are clipped to 0."""
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T


def _trace_sqrt_product_eigh(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    # Tr((S1 S2)^1/2) = Tr((S1^1/2 S2 S1^1/2)^1/2): S1 S2 is similar to the symmetric PSD matrix
    # S1^1/2 S2 S1^1/2, so the trace is the sum of square roots of its (real) eigenvalues.
    root1 = _sqrt_psd(sigma1)
    inner = root1 @ sigma2 @ root1
    eigenvalues = np.linalg.eigvalsh((inner + inner.T) / 2)  # symmetrise away round-off
    return float(np.sqrt(np.clip(eigenvalues, 0, None)).sum())


def _trace_sqrt_product_sqrtm(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    with warnings.catch_warnings():
        # Fewer samples than dimensions (any evaluation under 2048 images) makes the product
        # singular; scipy then warns on every call. The finiteness check below is what matters.
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * 1e-6
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        max_imag = np.max(np.abs(np.diagonal(covmean).imag))
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"sqrtm(sigma1 @ sigma2) has imaginary component {max_imag:.3g}")
        covmean = covmean.real
    return float(np.trace(covmean))


def frechet_distance(
    mu1: ArrayLike,
    sigma1: ArrayLike,
    mu2: ArrayLike,
    sigma2: ArrayLike,
    *,
    method: str = "eigh",
) -> float:
    """Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    d^2 = ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)).

    method="eigh" (default): Tr((S1 S2)^1/2) as the sum of square roots of the eigenvalues of
    the symmetric PSD matrix S1^1/2 S2 S1^1/2 (the same trace in exact arithmetic; torchmetrics
    also uses an eigenvalue route). Two symmetric eigendecompositions: about a second for
    2048 x 2048, real-valued throughout, and exact for the rank-deficient covariances of small
    evaluation sets (negative round-off eigenvalues are clipped to 0).

    method="sqrtm": the reference route of the TTUR code, pytorch-fid and NVIDIA's stylegan2-ada,
    `scipy.linalg.sqrtm(S1 @ S2)`. As pytorch-fid does, a non-finite root is retried with 1e-6
    added to both diagonals, and the imaginary round-off is dropped (an error if the diagonal's
    imaginary part exceeds 1e-3; NVIDIA drops it silently). scipy's Schur-based sqrtm takes
    minutes at 2048 x 2048 on a few CPU cores; use it to cross-check, not in training loops.
    Both agree to ~1e-6 relative on full-rank covariances (see tests/test_metrics.py).
    """
    mu1, mu2 = _to_float64(mu1).reshape(-1), _to_float64(mu2).reshape(-1)
    sigma1, sigma2 = np.atleast_2d(_to_float64(sigma1)), np.atleast_2d(_to_float64(sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size,) * 2:
        raise ValueError(
            f"shape mismatch: mu1 {mu1.shape}, mu2 {mu2.shape}, "
            f"sigma1 {sigma1.shape}, sigma2 {sigma2.shape}"
        )
    if method == "eigh":
        trace_sqrt = _trace_sqrt_product_eigh(sigma1, sigma2)
    elif method == "sqrtm":
        trace_sqrt = _trace_sqrt_product_sqrtm(sigma1, sigma2)
    else:
        raise ValueError(f"method must be 'eigh' or 'sqrtm', got {method!r}")
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt
    return float(value)


def kernel_inception_distance(
    real: ArrayLike,
    fake: ArrayLike,
    *,
    num_subsets: int = 100,
    max_subset_size: int = 1000,
    seed: int = 0,
) -> float:
    """Unbiased MMD^2 with kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets.

    Same estimator and defaults as NVIDIA's stylegan2-ada `kernel_inception_distance.py`: each
    subset draws m = min(N_real, N_fake, max_subset_size) rows from each set without replacement;
    the within-set kernel sums leave out the diagonal (i == j), which is what makes the estimate
    unbiased -- so it can be slightly negative when both sets come from the same distribution.
    NVIDIA uses the global NumPy RNG; we take an explicit `seed` so results are reproducible.
    """
    x_all, y_all = _to_float64(fake), _to_float64(real)
    _check_features(x_all, "fake")
    _check_features(y_all, "real")
    if x_all.shape[1] != y_all.shape[1]:
        raise ValueError(f"feature sizes differ: {x_all.shape[1]} vs {y_all.shape[1]}")
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
    d = x_all.shape[1]
    m = min(x_all.shape[0], y_all.shape[0], max_subset_size)
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = x_all[rng.choice(x_all.shape[0], m, replace=False)]  # [m, d]
        y = y_all[rng.choice(y_all.shape[0], m, replace=False)]  # [m, d]
        k_within = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3  # [m, m]
        k_cross = (x @ y.T / d + 1) ** 3  # [m, m]
        within = (k_within.sum() - np.trace(k_within)) / (m * (m - 1))
        total += within - 2.0 * k_cross.mean()
    return float(total / num_subsets)


def _kth_neighbour_radii(
    features: torch.Tensor, *, k: int, batch_size: int
) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row: the manifold's hypersphere radii."""
    radii = []
    for start in range(0, features.shape[0], batch_size):
        dist = torch.cdist(features[start : start + batch_size], features)  # [B, N]
        # k+1: the smallest distance is the point to itself (0), which does not count.
        radii.append(dist.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)  # [N]


def _fraction_inside(
    manifold: torch.Tensor, radii: torch.Tensor, probes: torch.Tensor, *, batch_size: int
) -> float:
    """Fraction of probe rows lying within some manifold row's hypersphere (distance <= radius)."""
    inside = 0
    for start in range(0, probes.shape[0], batch_size):
        dist = torch.cdist(probes[start : start + batch_size], manifold)  # [B, N]
        inside += int((dist <= radii.unsqueeze(0)).any(dim=1).sum())
    return inside / probes.shape[0]


@torch.no_grad()
def precision_recall(
    real: ArrayLike,
    fake: ArrayLike,
    *,
    k: int = 3,
    batch_size: int = 10000,
    device: torch.device | str | None = None,
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019, section 2), k = 3 as in the paper.

    precision: fraction of fake samples inside the real manifold (union of hyperspheres centred on
    each real feature with radius = distance to its k-th nearest real neighbour);
    recall: fraction of real samples inside the fake manifold, built the same way.

    Pairwise distances are computed `batch_size` rows at a time with torch.cdist in float32, so
    the memory peak is batch_size x N floats (10000 x 50000 = 2 GB) rather than N x N.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    real_np, fake_np = _to_float64(real), _to_float64(fake)
    _check_features(real_np, "real")
    _check_features(fake_np, "fake")
    for name, x in (("real", real_np), ("fake", fake_np)):
        if x.shape[0] <= k:
            raise ValueError(f"{name} needs more than k={k} samples, got {x.shape[0]}")
    if device is None:
        device = real.device if isinstance(real, torch.Tensor) else "cpu"
    real_t = torch.from_numpy(real_np).to(device=device, dtype=torch.float32)
    fake_t = torch.from_numpy(fake_np).to(device=device, dtype=torch.float32)
    real_radii = _kth_neighbour_radii(real_t, k=k, batch_size=batch_size)
    fake_radii = _kth_neighbour_radii(fake_t, k=k, batch_size=batch_size)
    precision = _fraction_inside(real_t, real_radii, fake_t, batch_size=batch_size)
    recall = _fraction_inside(fake_t, fake_radii, real_t, batch_size=batch_size)
    return precision, recall
