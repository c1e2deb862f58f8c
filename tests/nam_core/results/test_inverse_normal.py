"""The inverse normal transform of the composition tests: Blom scores, ties averaged."""

import numpy as np
from scipy import stats

from nam_core.results.composition import transform_proportions
from nam_core.results.composition.frequentist import inverse_normal


def test_blom_scores_by_hand():
    values = np.array([[0.3], [0.1], [0.2], [0.2]])
    ranks = np.array([4.0, 1.0, 2.5, 2.5])
    expected = stats.norm.ppf((ranks - 0.375) / 4.25)
    np.testing.assert_allclose(inverse_normal(values)[:, 0], expected)


def test_counts_to_normal_scores_per_column():
    counts = np.random.default_rng(0).integers(1, 50, size=(200, 3))
    scores = transform_proportions(counts, "inverse_normal")
    assert scores.shape == (200, 3)
    np.testing.assert_allclose(scores.mean(0), 0, atol=1e-2)
    assert np.all(np.abs(scores.std(0) - 1) < 0.05)
