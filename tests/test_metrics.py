"""Numerics of FID / KID / precision-recall against closed forms and constructed cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from progan.metrics.scores import (
    feature_statistics,
    frechet_distance,
    kernel_inception_distance,
    precision_recall,
)

# ---------------------------------------------------------------------------------------- FID


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_frechet_diagonal_gaussians_closed_form(method):
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = rng.uniform(0.1, 3.0, size=6), rng.uniform(0.1, 3.0, size=6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    got = frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2), method=method)
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_full_covariances_both_routes_agree_with_each_other():
    # Each method checked against the other's route computed independently here:
    # sqrtm of the (non-symmetric) product vs eigenvalues of the symmetric S1^1/2 S2 S1^1/2.
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    base = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)

    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(w)) @ v.T
    by_eigh = base - 2 * np.sum(np.sqrt(np.linalg.eigvalsh(r1 @ s2 @ r1)))
    by_sqrtm = base - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
    assert by_eigh == pytest.approx(by_sqrtm, rel=1e-10)
    assert frechet_distance(mu1, s1, mu2, s2, method="sqrtm") == pytest.approx(by_eigh, rel=1e-8)
    assert frechet_distance(mu1, s1, mu2, s2, method="eigh") == pytest.approx(by_sqrtm, rel=1e-8)
    t = torch.from_numpy  # torch inputs give the same number
    assert frechet_distance(t(mu1), t(s1), t(mu2), t(s2)) == pytest.approx(by_sqrtm, rel=1e-8)


def test_frechet_methods_agree_on_feature_covariances():
    rng = np.random.default_rng(12)
    x = rng.normal(size=(400, 24)) @ rng.normal(size=(24, 24))
    y = rng.normal(size=(400, 24)) @ rng.normal(size=(24, 24)) + 0.3
    stats = (*feature_statistics(x), *feature_statistics(y))
    eigh = frechet_distance(*stats, method="eigh")
    assert eigh == pytest.approx(frechet_distance(*stats, method="sqrtm"), rel=1e-6)
    with pytest.raises(ValueError, match="method"):
        frechet_distance(*stats, method="svd")


def test_frechet_identical_feature_sets_is_zero():
    features = np.random.default_rng(2).normal(size=(500, 16))
    mu, sigma = feature_statistics(features)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-8


def test_frechet_singular_covariances_are_handled():
    # Fewer samples than dimensions: rank-deficient covariances, as with small evaluation sets.
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(10, 32)), rng.normal(size=(10, 32)) + 1.0
    stats = (*feature_statistics(x), *feature_statistics(y))
    value = frechet_distance(*stats)
    assert np.isfinite(value) and value > 0
    assert value == pytest.approx(frechet_distance(*stats, method="sqrtm"), rel=1e-4)


def test_frechet_sqrtm_of_two_rank_one_covariances_retries_with_an_offset():
    """sigma1 = a a^T, sigma2 = b b^T: scipy's sqrtm of their (diagonalizable, repeated-zero) product
    comes back non-finite, so the sqrtm route must retry with 1e-6 on both diagonals, as pytorch-fid
    does. Closed form: (a a^T)(b b^T) = (a.b) a b^T has one non-zero eigenvalue (a.b)^2, so
    Tr((S1 S2)^1/2) = |a.b| and d^2 = |mu1 - mu2|^2 + |a|^2 + |b|^2 - 2 |a.b|."""
    for a, b in (([0.0, 1, 2], [1.0, -1, -2]), ([1.0, -1, 2, 2, 2], [2.0, 0, -2, 2, -2])):
        a, b = np.array(a), np.array(b)
        s1, s2 = np.outer(a, a), np.outer(b, b)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert not np.isfinite(scipy.linalg.sqrtm(s1 @ s2)).all()   # the case the retry exists for
        mu1, mu2 = np.zeros(len(a)), np.arange(len(a), dtype=float)
        expected = mu2 @ mu2 + a @ a + b @ b - 2 * abs(a @ b)
        for method in ("sqrtm", "eigh"):
            assert frechet_distance(mu1, s1, mu2, s2, method=method) == pytest.approx(expected, abs=1e-3), method


def test_feature_statistics_match_numpy():
    x = np.random.default_rng(4).normal(size=(100, 3))
    mu, sigma = feature_statistics(torch.from_numpy(x))
    np.testing.assert_allclose(mu, x.mean(0))
    np.testing.assert_allclose(sigma, np.cov(x.T))


def test_feature_statistics_of_two_samples_and_one_is_refused():
    """Rows (1, 2) and (3, 6): mean (2, 4); with u = (2, 4) their difference the unbiased covariance is
    u u^T / 2 = [[2, 4], [4, 8]]. One row has no covariance."""
    mu, sigma = feature_statistics(np.array([[1.0, 2.0], [3.0, 6.0]]))
    assert mu.tolist() == [2.0, 4.0] and sigma.tolist() == [[2.0, 4.0], [4.0, 8.0]]
    with pytest.raises(ValueError, match=r"^features needs at least 2 samples, got 1$"):
        feature_statistics(np.array([[1.0, 2.0]]))

def test_frechet_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape mismatch"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# ---------------------------------------------------------------------------------------- KID


def _poly_mmd2_gaussians(d: int, mu: np.ndarray) -> float:
    """MMD^2 between N(0, I) and N(mu, I) in d dims for k(x, y) = (x.y/d + 1)^3, by hand.

    For independent x, y write v = x.y; E k = 1 + 3 E[v]/d + 3 E[v^2]/d^2 + E[v^3]/d^3.
      P,P: E v = 0, E v^2 = d, E v^3 = 0                      -> 1 + 3/d
      P,Q: E v = 0, E v^2 = d + |mu|^2, E v^3 = 0 (odd in x)  -> 1 + 3(d + m)/d^2
      Q,Q: v = m + W, E W^2 = 2m + d, E W^3 = 6m (only the mu.a mu.b a.b term survives)
           -> E v^2 = m^2 + 2m + d, E v^3 = m^3 + 3m(2m + d) + 6m
    """
    m = float(mu @ mu)
    k_pp = 1 + 3 / d
    k_pq = 1 + 3 * (d + m) / d**2
    k_qq = 1 + 3 * m / d + 3 * (m * m + 2 * m + d) / d**2 + (m**3 + 3 * m * (2 * m + d) + 6 * m) / d**3
    return k_pp + k_qq - 2 * k_pq


def test_kid_matches_analytic_mmd_for_shifted_gaussians():
    d, mu = 4, np.array([1.5, 0.0, 0.0, 0.0])
    expected = _poly_mmd2_gaussians(d, mu)  # 3.922...
    rng = np.random.default_rng(5)
    real = rng.normal(size=(20000, d))
    fake = rng.normal(size=(20000, d)) + mu
    # Small subsets on purpose: a biased (V-statistic) estimator would be off by O(1/m).
    got = kernel_inception_distance(real, fake, num_subsets=400, max_subset_size=50, seed=0)
    assert got == pytest.approx(expected, rel=0.05)


def test_kid_is_unbiased_for_same_distribution():
    rng = np.random.default_rng(6)
    values = []
    for seed in range(40):
        real, fake = rng.normal(size=(64, 8)), rng.normal(size=(64, 8))
        values.append(
            kernel_inception_distance(real, fake, num_subsets=5, max_subset_size=32, seed=seed)
        )
    values = np.array(values)
    assert min(values) < 0  # an unbiased estimate of 0 must go negative sometimes
    # The mean is ~0 within its standard error; a biased V-statistic would sit near +0.2 here.
    assert abs(values.mean()) < 3 * values.std(ddof=1) / np.sqrt(len(values))


def test_kid_seed_is_reproducible_and_identical_sets_small():
    x = np.random.default_rng(7).normal(size=(300, 8))
    a = kernel_inception_distance(x, x, num_subsets=10, max_subset_size=100, seed=3)
    b = kernel_inception_distance(x, x, num_subsets=10, max_subset_size=100, seed=3)
    shifted = kernel_inception_distance(x, x + 1.0, num_subsets=10, max_subset_size=100, seed=3)
    assert a == b and abs(a) < 0.05 * shifted


@pytest.mark.parametrize("fewer", ["real", "fake"])
def test_kid_subset_size_is_the_smaller_set_whichever_it_is(fewer):
    """KID draws m = min(N_real, N_fake, max_subset_size) rows from *each* set. With the larger set made of
    one repeated row, the subset drawn from it does not matter, the smaller set is used whole, and the
    unbiased MMD^2 is a closed form: k(a, a) + mean_{i != j} k(y_i, y_j) - 2 mean_j k(a, y_j)."""
    d = 3
    small = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5], [-1.0, 1.0, 1.0], [0.0, 2.0, 0.5], [2.0, -0.5, 0.0]])
    a = np.array([1.0, 0.5, -0.5])
    large = np.tile(a, (12, 1))                                           # 12 rows > 5 rows
    k = lambda x, y: (x @ y.T / d + 1) ** 3                               # noqa: E731
    within_small = (k(small, small).sum() - np.trace(k(small, small))) / (5 * 4)
    expected = float(k(a[None], a[None])[0, 0] + within_small - 2 * k(a[None], small).mean())
    real, fake = (small, large) if fewer == "real" else (large, small)
    got = kernel_inception_distance(real, fake, num_subsets=3, max_subset_size=1000, seed=1)
    assert got == pytest.approx(expected, rel=1e-12)
    assert abs(expected) > 0.1                                            # not a trivially zero case


def test_kid_with_one_subset_is_the_unbiased_mmd_of_the_whole_sets_and_zero_subsets_are_refused():
    """Two sets of 3 rows, m = 3: one subset is each whole set (in some order, which the sums ignore), so KID is
    mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j), k(x, y) = (x.y / d + 1)^3."""
    d = 2
    fake = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, -1.0]])
    real = np.array([[1.0, 0.0], [0.5, 0.5], [-1.0, 2.0]])

    def k(x, y):
        return (float(np.dot(x, y)) / d + 1) ** 3

    def within(s):
        return sum(k(s[i], s[j]) for i in range(3) for j in range(3) if i != j) / 6

    expected = within(fake) + within(real) - 2 * sum(k(x, y) for x in fake for y in real) / 9
    assert kernel_inception_distance(real, fake, num_subsets=1, seed=4) == pytest.approx(expected, rel=1e-12)
    assert abs(expected) > 0.1
    with pytest.raises(ValueError, match=r"^num_subsets must be >= 1, got 0$"):
        kernel_inception_distance(real, fake, num_subsets=0)


@pytest.mark.parametrize("side", ["real", "fake"])
def test_kid_refuses_either_set_of_one_row_or_not_n_by_d(side):
    """The unbiased within-set sum divides by m (m - 1): one row on either side has no estimate (0 / 0),
    so it is a one-line error naming that side, as is a set that is not [N, D] features."""
    good = np.random.default_rng(0).normal(size=(4, 3))
    for bad, message in ((good[:1], rf"^{side} needs at least 2 samples, got 1$"),
                         (good[0], rf"^{side} must be \[N, D\] features, got shape \(3,\)$")):
        sets = {"real": good, "fake": good, side: bad}
        with pytest.raises(ValueError, match=message):
            kernel_inception_distance(sets["real"], sets["fake"], num_subsets=1)

# ------------------------------------------------------------------------- precision / recall


def _clusters(centres: np.ndarray, per_cluster: int, rng: np.random.Generator) -> np.ndarray:
    return np.concatenate([c + 0.05 * rng.normal(size=(per_cluster, centres.shape[1])) for c in centres])


def test_precision_of_subset_is_one():
    real = np.random.default_rng(8).normal(size=(400, 5))
    precision, _ = precision_recall(real, real[::3], k=3)
    assert precision == 1.0


def test_far_away_fake_has_zero_precision_and_recall():
    rng = np.random.default_rng(9)
    real = rng.normal(size=(300, 5))
    fake = rng.normal(size=(300, 5)) + 100.0
    assert precision_recall(real, fake, k=3) == (0.0, 0.0)


def test_fake_covering_half_the_clusters_has_half_recall():
    rng = np.random.default_rng(10)
    angles = np.arange(8) * np.pi / 4
    centres = 10.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)  # 8 separated modes
    real = _clusters(centres, 200, rng)
    fake = _clusters(centres[:4], 200, rng)  # mode collapse onto half the modes
    precision, recall = precision_recall(real, fake, k=3, batch_size=64)
    # Sampled k-NN manifolds cover a little less than the true support: not exactly 1 and 0.5.
    assert precision > 0.9
    assert recall == pytest.approx(0.5, abs=0.05)


def test_precision_recall_batching_does_not_change_result():
    rng = np.random.default_rng(11)
    real, fake = rng.normal(size=(257, 6)), rng.normal(size=(199, 6)) * 1.3
    full = precision_recall(real, fake, k=3, batch_size=10000)
    assert precision_recall(real, fake, k=3, batch_size=17) == full


def test_precision_recall_by_hand_on_a_line():
    # 1-D features, k=1: each radius is the distance to the nearest *other* point of its set.
    # real 0,1,3,6,10 -> radii 1,1,2,3,4; fake -5,0.5,2.5,8,20 -> radii 5.5,2,2,5.5,12.
    # precision: 0.5 (0.5 from 0), 2.5 (0.5 from 3), 8 (2 from 6) inside; -5 and 20 outside -> 3/5.
    # recall: every real lies within 2 of 0.5, 2.5 or 8, inside their radii -> 5/5.
    real = np.array([[0.0], [1.0], [3.0], [6.0], [10.0]])
    fake = np.array([[-5.0], [0.5], [2.5], [8.0], [20.0]])
    assert precision_recall(real, fake, k=1) == (pytest.approx(0.6), pytest.approx(1.0))


def test_duplicated_samples_are_inside_their_zero_radius_spheres():
    # Each point 4 times with k=3: every k-th-neighbour radius is 0, and a probe at distance 0 is
    # inside (distance <= radius, as in Kynkaanniemi et al. and NVIDIA's code).
    points = np.repeat(np.random.default_rng(3).normal(size=(5, 4)), 4, axis=0)
    assert precision_recall(points, points, k=3) == (1.0, 1.0)


def test_precision_recall_needs_more_than_k_samples():
    with pytest.raises(ValueError, match="more than k"):
        precision_recall(np.zeros((3, 2)), np.zeros((10, 2)), k=3)
