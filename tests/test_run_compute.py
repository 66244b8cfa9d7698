"""One rule orders runs by compute (holdout, lean, the CLI's grouped fits): C, else 6ND, else
the first input, and a fit says so when it ordered by an input."""

import numpy as np
import pytest

from scalinglab.fit.loss import fit_arrays, run_compute


def test_compute_is_c_else_6nd_else_the_first_input():
    n, d = np.array([1e8, 1e9]), np.array([2e9, 2e10])
    c, basis = run_compute({"N": n, "D": d}, [5.0, 7.0])
    assert basis == "C" and c.tolist() == [5.0, 7.0]
    c, basis = run_compute({"N": n, "D": d})
    assert basis == "6ND" and c == pytest.approx([1.2e18, 1.2e20])
    c, basis = run_compute({"N": n, "lr": np.array([3e-4, 1e-4])})
    assert basis == "N" and c.tolist() == n.tolist()


def test_a_holdout_ordered_by_an_input_says_so():
    n = 10 ** np.linspace(7, 10, 10)
    loss = 1.7 + 400 * n ** -0.3
    fit = fit_arrays("power_N", {"N": n}, loss, holdout_top=2, bootstrap=0)
    assert fit.holdout is not None and sorted(fit.holdout.run_ids) == ["run-10", "run-9"]
    assert any("the holdout took the runs with the highest N as the top" in m for m in fit.notes)
    plain = fit_arrays("power_N", {"N": n}, loss, bootstrap=0)
    assert not any("no compute given" in m for m in plain.notes)
