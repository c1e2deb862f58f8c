"""Settings and fixtures shared by the nam_core tests."""

#: Estimator options of an exact test: float64 on the CPU, quiet.
F64 = dict(dtype="float64", device="cpu", verbose=False)
