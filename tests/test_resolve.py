"""One resolver for "a name, a file or an object" (issue 28): each parameter that takes a law
accepts the same things, and says the same thing when it cannot."""

from __future__ import annotations

import pytest

import scalinglab as sl
from scalinglab.errors import InputError, ParameterError
from scalinglab.laws.base import LawInstance
from scalinglab.laws.resolve import resolve
from scalinglab.plan.planner import make_plan


def test_names_files_and_objects_resolve_to_what_the_parameter_wants(tmp_path):
    assert resolve("hoffmann2022", "loss_law") is sl.HOFFMANN_2022
    assert resolve("HOFFMANN2022", "loss_law") is sl.HOFFMANN_2022  # names in any case
    assert resolve(sl.HOFFMANN_2022, "loss_law") is sl.HOFFMANN_2022
    assert resolve("steplaw", "hparams") is sl.STEP_LAW
    assert resolve("0.8", "tau") == 0.8 and resolve(0.5, "tau") == 0.5
    from report_synth import isoflop_runs

    fit = sl.fit_law("chinchilla", isoflop_runs(budgets=[1e17, 1e18, 1e19], per_budget=5),
                     bootstrap=0)
    path = fit.save(tmp_path / "fit.json")
    loaded = resolve(path, "loss_law")
    assert loaded.kind == "loss_fit" and loaded.params == pytest.approx(fit.params)
    assert resolve(fit, "fit") is fit
    # the planner takes the same things, through the same resolver
    assert make_plan(compute=1e21, loss_law=str(path)).loss == pytest.approx(
        make_plan(compute=1e21, loss_law=fit).loss)
    assert isinstance(resolve("besiroglu2024", "loss_law"), LawInstance)


def test_what_cannot_be_resolved_says_why_naming_the_parameter_or_the_file(tmp_path):
    with pytest.raises(ParameterError, match="loss_law 'moore': no such file, and not a "
                                             "published law \\(.*hoffmann2022"):
        make_plan(compute=1e21, loss_law="moore")
    with pytest.raises(ParameterError, match="tau 'x': neither a number nor a file"):
        resolve("x", "tau")
    fit_file = tmp_path / "fit.json"
    fit_file.write_text('{"kind": "loss_fit"}')
    with pytest.raises(InputError, match="fit.json: a saved loss_fit result, not a saved link "
                                         "\\(expected kind link_fit or link_table\\)"):
        resolve(fit_file, "link")
    with pytest.raises(ParameterError, match="want must be one of"):
        resolve("x", "horoscope")
