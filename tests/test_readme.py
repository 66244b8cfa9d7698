"""The README's Python example runs as written (a notebook user copies it first)."""

from __future__ import annotations

import re
from pathlib import Path

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
