"""The README's Python example runs as written (a notebook user copies it first)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_from_python_example_runs(tmp_path, monkeypatch):
    text = README.read_text(encoding="utf-8")
    section = text.split("## From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)  # the example opens a store in the working directory
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README, not user text
    res, plan = namespace["res"], namespace["plan"]
    assert res.n_runs == 36 and len(res.heldout_ids) == 4
    assert plan.loss_interval is not None and namespace["mine"].name == "mine"


SHARED = README.parents[1] / "shared" / "data"


def readme_commands(prefix: str) -> list[str]:
    """Every command in the README that starts with ``prefix`` (table cells and code blocks)."""
    text = README.read_text(encoding="utf-8")
    cells = re.findall(r"`(scalinglab [^`]+)`", text)
    lines = [ln.split("  #")[0].strip() for ln in re.findall(r"^scalinglab .*$", text, re.M)]
    return [c for c in dict.fromkeys(cells + lines) if c.startswith(prefix)]


def run_readme(command: str, tmp_path: Path, *extra: str) -> str:
    """Run a README command as typed from the repo root, the shared data where it says."""
    import shlex

    from typer.testing import CliRunner

    from scalinglab.cli import app

    args = [a.replace("../shared/data", str(SHARED)) for a in shlex.split(command)[1:]]
    res = CliRunner().invoke(app, [*args, *extra])
    assert res.exit_code == 0, (command, res.output)
    return res.output


def test_the_loss_to_loss_rows_run_on_the_shared_sweep(tmp_path, monkeypatch):
    """The README's loss-to-loss rows name the shared sweep's columns and groups: fit, save, and
    predict from the saved file, as copied (fewer resamples, to stay fast)."""
    if not (SHARED / "loss_to_loss" / "sweep.csv").exists():
        pytest.skip("shared data absent")
    monkeypatch.chdir(tmp_path)
    fits = readme_commands("scalinglab fit loss-to-loss ")
    assert len(fits) == 2 and all("../shared/data/loss_to_loss/sweep.csv" in c for c in fits)
    out = run_readme(next(c for c in fits if "--save l2l.json" in c), tmp_path, "-b", "2")
    assert "fineweb-edu-100b" in out and (tmp_path / "l2l.json").exists()
    (predict,) = [c for c in readme_commands("scalinglab predict loss-to-loss ")
                  if "--fit l2l.json" in c]
    out = run_readme(predict, tmp_path)
    assert "hellaswag_test_ce_loss predicted from val_loss" in out and "95% interval" in out


def test_the_curves_python_example_runs_on_the_released_curves() -> None:
    """The curves section's Python lines, given the frame they name (three released 25M curves,
    as the benchmark fits them; 20 resamples instead of 100 to stay fast)."""
    path = SHARED / "curves" / "mpl_curves_25M.csv"
    if not path.exists():
        pytest.skip("shared data absent")
    import pandas as pd

    section = README.read_text(encoding="utf-8").split("## Loss curves across", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "bootstrap=100" in code
    frame = pd.read_csv(path)
    frame = frame[frame["schedule"].isin(["cosine_24000", "constant_24000", "wsdcon_9"])]
    import scalinglab

    namespace: dict = {"sl": scalinglab, "frame": frame}
    exec(compile(code.replace("bootstrap=100", "bootstrap=20"), "README.md", "exec"),  # noqa: S102
         namespace)  # our own README, not user text
    fit = namespace["fit"]
    pred = fit.predict("wsd:steps=24000,peak=3e-4,final=3e-5,warmup=2160,decay_start=20000,decay=exp")
    assert list(pred.columns) == ["step", "lr", "loss", "lo", "hi"]
    assert (pred["lo"] <= pred["loss"]).all() and (pred["loss"] <= pred["hi"]).all()
