"""translate() refits the link under each of the old law's draws of E_old: when fewer of those
refits converge than the other loss-to-loss fits require (``_min_refits``), it says so."""

import dataclasses

import numpy as np
import pandas as pd

from scalinglab.downstream.l2l import _min_refits, _too_few_refits, translate
from scalinglab.fit import fit_law
from scalinglab.laws.loss_to_loss import shifted_power


def test_the_rule_is_the_one_the_other_loss_to_loss_fits_use():
    # half of the refits, and at least 10 (all of them when fewer than 10 were asked for)
    assert _min_refits(100) == 50 and _min_refits(30) == 15 and _min_refits(3) == 3
    assert _too_few_refits(50, 100) is None
    assert _too_few_refits(0, 0) is None  # no draws asked for: nothing to say
    said = _too_few_refits(49, 100)
    assert said is not None and "only 49 of 100" in said and "need 50" in said
    assert "too narrow" in said
    assert _too_few_refits(2, 3) is not None  # a quick look with 3 draws needs all 3


def _old_and_new(seed: int = 4) -> tuple[object, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    N = np.repeat(np.geomspace(2e7, 2e9, 6), 4)
    D = N * np.tile([4, 10, 20, 50], 6)
    old = (1.9 + 500.0 / N**0.35 + 2500.0 / D**0.3) * np.exp(rng.normal(0, 0.002, len(N)))
    new = shifted_power({"x": old}, {"K": 1.4, "kappa": 0.8, "E_x": 1.9, "E_y": 1.2})
    old_fit = fit_law("chinchilla", pd.DataFrame({"N": N, "D": D, "loss": old}), bootstrap=20, seed=0)
    few = np.flatnonzero(D / N == 20)
    return old_fit, pd.DataFrame({"N": N[few], "D": D[few], "loss": new[few]})


def test_a_translation_whose_refits_mostly_fail_says_so():
    old_fit, runs = _old_and_new()
    clean = translate(old_fit, runs, baseline=None, bootstrap=20)
    assert not any("bootstrap refits under the old law's draws" in w for w in clean.warnings)
    # an old law whose draws put its irreducible loss at or below 0 in 15 of 20 (E is a log-scale
    # parameter; a source saved by other means can carry such draws): no link can be refitted
    # under those, so only 5 of the 20 refits converge, fewer than the 10 the rule needs
    draws = np.array(old_fit.draws, float)
    draws[5:, old_fit.law.param_names.index("E")] = -1.0
    broken = dataclasses.replace(old_fit, draws=draws)
    tr = translate(broken, runs, baseline=None, bootstrap=20)
    assert len(tr.source_draw) == 5
    said = [w for w in tr.warnings if "bootstrap refits under the old law's draws" in w]
    assert len(said) == 1 and "only 5 of 20" in said[0] and "need 10" in said[0]
