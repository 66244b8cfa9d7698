"""A loss-to-loss link whose offsets come from scaling laws gets its bootstrap draws afterwards
(each under a draw of the offsets): the engine's identifiability checks run on those draws, not
only on the point fit, which saw no spread."""

import warnings

import numpy as np
import pandas as pd

from scalinglab.downstream.l2l import fit_loss_to_loss
from scalinglab.fit.loss import soft_identifiability
from scalinglab.laws.loss_to_loss import shifted_power


def _runs(noise: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    N = np.repeat([1e7, 3e7, 1e8], 3)
    D = N * np.tile([5, 20, 80], 3)
    x = (1.8 + 400 / N**0.34 + 1200 / D**0.28) * np.exp(rng.normal(0, noise, 9))
    y = shifted_power({"x": x}, {"K": 1.2, "kappa": 1.1, "E_x": 1.8, "E_y": 2.3})
    return pd.DataFrame({"N": N, "D": D, "x": x, "y": y * np.exp(rng.normal(0, noise, 9))})


def test_a_link_whose_draws_do_not_pin_kappa_says_so():
    # nine noisy runs: the point fit looks fine (kappa 1.1 is plausible), but across the draws
    # kappa runs from 0.54 to 2.0; before, nothing said so
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_loss_to_loss(_runs(2e-2, 0), "x", "y", offsets="scaling", bootstrap=30, seed=0)
    link = fit.fit()
    lo, hi = link.ci["kappa"]
    assert hi - lo > 1.0
    assert "kappa" in link.unidentified
    assert sum(w.startswith("not identified by these runs") for w in link.warnings) == 1
    assert any("kappa" in w and "not identified" in w for w in fit.warnings)
    # the rule is the engine's, on the draws the intervals come from
    _, bad = soft_identifiability(link.law, link.params, link.draws, link.level, only=["K", "kappa"])
    assert set(bad) <= set(link.unidentified)


def test_a_link_whose_draws_agree_stays_identified():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_loss_to_loss(_runs(1e-3, 5), "x", "y", offsets="scaling", bootstrap=30, seed=0)
    link = fit.fit()
    assert link.n_draws >= 15 and not set(link.unidentified) & {"K", "kappa"}
