"""The realistic-counts case's library-size regression (nam_core.synthetic.realistic)."""

import numpy as np

from nam_core.synthetic.realistic import regress_out_library


def test_regressed_pcs_are_uncorrelated_with_the_log_library_and_keep_their_means():
    rng = np.random.default_rng(0)
    library = np.exp(rng.normal(8.0, 0.4, size=500))
    z = np.log(library)
    Y = rng.normal(size=(500, 4)) + np.outer(z - z.mean(), [2.0, -1.0, 0.0, 0.5]) + 3.0
    out = regress_out_library(Y, library)
    assert out.shape == Y.shape
    np.testing.assert_allclose((z - z.mean()) @ out, 0.0, atol=1e-9)
    np.testing.assert_allclose(out.mean(0), Y.mean(0), atol=1e-12)
    # a second regression changes nothing
    np.testing.assert_allclose(regress_out_library(out, library), out, atol=1e-12)
