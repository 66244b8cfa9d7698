"""Chaining a loss law and a link: joint bootstrap intervals that carry both fits' uncertainty."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scalinglab.clikit import to_json
from scalinglab.downstream import EXP_LINK, ChainedPrediction, chain, fit_link, fit_links, loss_at
from scalinglab.errors import ParameterError
from scalinglab.fit.loss import fit_arrays
from scalinglab.laws.loss import CHINCHILLA, power_law

LOSS_LAW = power_law("C")
TRUE_LOSS = {"E": 1.8, "A": 2000.0, "alpha": 0.16}
TRUE_LINK = {"eps": 0.8, "k": 2.5, "gamma": 0.8}
N_TARGET, C_TARGET = 2e9, 1e21  # 10x beyond the largest run
D_TARGET = C_TARGET / (6 * N_TARGET)


def synthetic_fits(seed: int, bootstrap: int = 100):
    """A loss law fitted on 16 runs and a link fitted on 12 other runs, all below 1e20 FLOPs."""
    rng = np.random.default_rng(seed)
    C = np.geomspace(1e17, 1e20, 16)
    L = LOSS_LAW(TRUE_LOSS, C=C) * np.exp(rng.normal(0, 0.01, len(C)))
    loss_fit = fit_arrays(LOSS_LAW, {"C": C}, L, bootstrap=bootstrap, seed=seed)
    C2 = np.geomspace(1e17, 1e20, 12)
    L2 = LOSS_LAW(TRUE_LOSS, C=C2) * np.exp(rng.normal(0, 0.003, len(C2)))
    M2 = EXP_LINK.law(TRUE_LINK, L=LOSS_LAW(TRUE_LOSS, C=C2)) + rng.normal(0, 0.004, len(C2))
    return loss_fit, fit_link(L2, M2, "exp", bootstrap=bootstrap, seed=seed)


def truth():
    L = float(LOSS_LAW(TRUE_LOSS, C=C_TARGET))
    return L, float(EXP_LINK.law(TRUE_LINK, L=L))


def test_loss_law_draws_are_evaluated_row_by_row_as_the_law_itself():
    loss_fit, _ = synthetic_fits(0, bootstrap=20)
    point, draws = loss_at(loss_fit, np.array([N_TARGET]), np.array([D_TARGET]))
    expected = [loss_fit.law(dict(zip(loss_fit.law.param_names, row, strict=True)), C=C_TARGET)
                for row in loss_fit.draws]
    np.testing.assert_allclose(draws[:, 0], np.ravel(expected))
    assert point[0] == pytest.approx(float(loss_fit.predict(C=C_TARGET)))


def test_chained_intervals_cover_the_true_metric_in_most_repeats_and_are_joint():
    L_true, M_true = truth()
    hits_metric = hits_loss = wider = 0
    widths = []
    repeats = 12
    for r in range(repeats):
        loss_fit, link = synthetic_fits(100 + r)
        pred = chain(loss_fit, link, N_TARGET, D_TARGET, seed=r)
        joint, by_loss, by_link = (pred.curve["metric"][0], pred.loss_only["metric"][0],
                                   pred.link_only["metric"][0])
        hits_metric += joint.lo <= M_true <= joint.hi
        hits_loss += pred.loss[0].lo <= L_true <= pred.loss[0].hi
        wider += (joint.hi - joint.lo) > (by_loss.hi - by_loss.lo)
        widths.append([joint.hi - joint.lo, by_loss.hi - by_loss.lo, by_link.hi - by_link.lo])
    assert hits_metric >= 10 and hits_loss >= 10  # nominal 95%
    # wider than the loss law's band alone...
    assert wider >= 11
    w = np.mean(widths, axis=0)
    # ...and not the two bands added: independent errors add in quadrature, roughly
    assert w[0] < w[1] + w[2]
    assert w[0] == pytest.approx(np.hypot(w[1], w[2]), rel=0.25)


def test_a_published_law_without_draws_carries_only_the_links_uncertainty():
    _, link = synthetic_fits(1)
    inst = LOSS_LAW.with_params(TRUE_LOSS, label="true law")
    pred = chain(inst, link, N_TARGET, D_TARGET)
    assert pred.n_draws == len(link.draws) and pred.loss[0].ci is None and pred.loss_draws is None
    assert pred.curve["metric"][0].ci == pred.link_only["metric"][0].ci
    # the new-model interval adds the link's model-to-model scatter to the link's draws
    new, curve = pred.metrics["metric"][0], pred.curve["metric"][0]
    assert new.lo < curve.lo and new.hi > curve.hi
    assert any("link's uncertainty only" in n for n in pred.notes)
    assert pred.loss_law == "true law"


def test_pairing_is_random_but_deterministic_for_a_seed():
    loss_fit, link = synthetic_fits(2, bootstrap=60)
    a = chain(loss_fit, link, [N_TARGET, 1e9], [D_TARGET, 2e10], seed=5)
    b = chain(loss_fit, link, [N_TARGET, 1e9], [D_TARGET, 2e10], seed=5)
    c = chain(loss_fit, link, [N_TARGET, 1e9], [D_TARGET, 2e10], seed=6)
    np.testing.assert_array_equal(a.draws["metric"], b.draws["metric"])
    assert not np.array_equal(a.draws["metric"], c.draws["metric"])
    # each paired draw is the link's draw at the loss law's draw, nothing else
    j = 7
    link_row = [row for row in link.draws if np.allclose(
        EXP_LINK.evaluate(row[None, :], {"L": a.loss_draws[j]})[0], a.draws["metric"][j])]
    assert link_row


def test_different_draw_counts_are_paired_by_resampling_the_smaller():
    loss_fit, _ = synthetic_fits(3, bootstrap=30)
    _, link = synthetic_fits(4, bootstrap=80)
    pred = chain(loss_fit, link, N_TARGET, D_TARGET)
    assert pred.n_draws == 80 and pred.draws["metric"].shape == (80, 1)


def test_many_metrics_share_the_loss_draws_and_come_out_in_one_table():
    loss_fit, link = synthetic_fits(5, bootstrap=40)
    L, y = link.x, link.y
    table = fit_links(L, {"err_a": y, "err_b": 0.9 * y + 0.05}, "exp", bootstrap=40)
    pred = chain(loss_fit, table, N_TARGET, D_TARGET)
    assert set(pred.metrics) == {"err_a", "err_b"}
    text = pred.summary().as_text()
    assert "err_a" in text and "err_b" in text and "new model" in text and "curve (both fits)" in text


def test_warns_when_the_predicted_loss_is_outside_the_links_range():
    loss_fit, link = synthetic_fits(6, bootstrap=20)
    pred = chain(loss_fit, link, N_TARGET, D_TARGET)
    assert any("extrapolated" in w for w in pred.warnings)
    near = chain(loss_fit, link, 1e8, 1e19 / 6e8)  # inside the fitted range
    assert not near.warnings


def test_a_chinchilla_law_is_chained_in_N_and_D():
    eta = 0.2728507061786173
    gadre = CHINCHILLA.with_params({"E": 1.8366, "A": 166.21, "B": 366.687 * 6 ** (-eta / 2),
                                    "alpha": eta, "beta": eta})
    link = fit_link(np.linspace(2.5, 5.5, 10), EXP_LINK.law(TRUE_LINK, L=np.linspace(2.5, 5.5, 10)),
                    bootstrap=0)
    pred = chain(gadre, link, 6.9e9, 6.9e9 * 20)
    assert pred.loss[0].value == pytest.approx(
        1.8366 + 166.21 * 6.9e9 ** -eta + 366.687 * 6 ** (-eta / 2) * (6.9e9 * 20) ** -eta)
    assert any("neither fit" in n for n in pred.notes)


def test_bad_points_are_parameter_errors():
    _, link = synthetic_fits(7, bootstrap=10)
    inst = LOSS_LAW.with_params(TRUE_LOSS)
    with pytest.raises(ParameterError, match="N and D"):
        chain(inst, link, [1e9, -1], [1e10, 1e10])
    with pytest.raises(ParameterError, match="values of N"):
        chain(inst, link, [1e9, 2e9], [1e10, 2e10, 3e10])


def test_chained_prediction_round_trips_through_json():
    loss_fit, link = synthetic_fits(8, bootstrap=30)
    pred = chain(loss_fit, link, [N_TARGET, 1e9], [D_TARGET, 2e10])
    back = ChainedPrediction.from_dict(json.loads(to_json(pred.to_dict(include_draws=True))))
    assert back.metrics["metric"][1].ci == pytest.approx(pred.metrics["metric"][1].ci)
    assert back.loss[0].value == pytest.approx(pred.loss[0].value)
    np.testing.assert_allclose(back.draws["metric"], pred.draws["metric"])
    assert repr(pred).startswith("<ChainedPrediction 12 runs, 2 points, 1 metrics")
