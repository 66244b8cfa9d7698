"""Sweep plans: sensible shapes per budget, readable editable TOML, ids that follow the content."""

from __future__ import annotations

import math
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest
import tomli_w

from scalinglab.errors import InputError, ParameterError
from scalinglab.runs.store import RunStore
from scalinglab.sweep.data import DataSpec
from scalinglab.sweep.model import ModelConfig
from scalinglab.sweep.plan import Defaults, RunSpec, SweepPlan, grid_plan, isoflop_plan, load_plan
from scalinglab.sweep.runner import run_plan
from scalinglab.sweep.schema import (
    DATA_RULES,
    MODEL_RULES,
    TRAIN_RULES,
    DataSection,
    DefaultsSection,
    RunTable,
)
from scalinglab.sweep.train import TrainConfig


def test_isoflop_plan_spends_each_budget_on_models_around_the_rule_of_thumb():
    plan = isoflop_plan([1e11, 1e12], sizes=5, span=16)
    assert plan.kind == "isoflop" and len(plan.runs) == 10
    for budget in (1e11, 1e12):
        runs = [r for r in plan.runs if r.budget == budget]
        sizes = sorted(r.N for r in runs)
        assert len(set(sizes)) == 5
        assert 6 < sizes[-1] / sizes[0] < 40  # spans about the requested factor
        centre = math.sqrt(budget / (6 * 20))
        assert sizes[0] < centre < sizes[-1]
        for r in runs:
            assert r.C == 6 * r.N * r.D
            assert abs(math.log(r.C / budget)) < math.log(1.1)  # steps rounding only
            assert r.tags["budget"] == f"{budget:.3g}"


def test_grid_plan_crosses_lr_batch_and_size():
    plan = grid_plan([1e-3, 3e-3, 1e-2], [512, 1024], [1e5, 4e5], tokens=2e6)
    assert len(plan.runs) == 12
    assert {r.train.lr for r in plan.runs} == {1e-3, 3e-3, 1e-2}
    assert {r.tokens_per_step for r in plan.runs} == {512, 1024}
    for r in plan.runs:
        assert abs(r.D - 2e6) <= r.tokens_per_step


def test_a_plan_survives_a_round_trip_through_toml_with_the_same_ids(tmp_path: Path):
    plan = isoflop_plan([1e11, 3e11], sizes=3, defaults=Defaults(lr=5e-3))
    path = plan.save(tmp_path / "p.toml")
    text = path.read_text()
    assert text.startswith("# scalinglab sweep plan") and "[[runs]]" in text and "[defaults]" in text
    again = load_plan(path)
    assert [r.run_id for r in again.runs] == [r.run_id for r in plan.runs]
    assert [r.N for r in again.runs] == [r.N for r in plan.runs]
    assert again.notes == []


def test_editing_a_run_in_the_file_makes_it_a_new_run(tmp_path: Path):
    plan = isoflop_plan([1e11], sizes=3)
    path = plan.save(tmp_path / "p.toml")
    first = plan.runs[0]
    text = path.read_text().replace(f'run_id = "{first.run_id}"\n',
                                    f'run_id = "{first.run_id}"\nlr = 0.02\n', 1)
    path.write_text(text)
    edited = load_plan(path)
    assert edited.runs[0].train.lr == 0.02
    assert edited.runs[0].run_id != first.run_id
    assert edited.runs[1].run_id == plan.runs[1].run_id
    assert "edited" in edited.notes[0]


# -- the plan file's schema ------------------------------------------------------------------

#: a plan written by scalinglab before plans were validated (main at 7863cab), with two hand
#: edits of the kind people make: run 1's lr as an int, run 2's weight decay and MLP ratio as
#: ints. The ids below are what that version computed for it; a valid old plan keeps them.
OLD_PLAN = """\
[sweep]
name = "isoflop"
kind = "isoflop"
runs = 2
total_compute = 200100000000.0

[data]
source = "stdlib"
val_fraction = 0.05

[defaults]
seq_len = 64
batch_tokens = 1024
lr = 0.003
weight_decay = 0.1
warmup = 0.05
schedule = "cosine"
seed = 0
vocab_size = 256
positions = "rope"
tie_embeddings = true
ffn_ratio = 4.0
eval_tokens = 65536

[[runs]]
lr = 1
run_id = "s-13c3794946b09847"
budget = 100000000000.0
N = 6224
D = 2677760
C = 99998300000.0
tokens_per_param = 430.23
embedding_params = 4096
d_model = 16
n_layers = 2
n_heads = 1
steps = 2615
min_lr_ratio = 0.1
decay_fraction = 0.2
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0
evals = 8
ema = 0.9

[runs.tags]
sweep = "isoflop"
budget = "1e+11"

[[runs]]
weight_decay = 0
ffn_ratio = 4
run_id = "s-79917f17bb011c92"
budget = 100000000000.0
N = 110880
D = 150528
C = 100143000000.0
tokens_per_param = 1.36
embedding_params = 24576
d_model = 96
n_layers = 1
n_heads = 3
steps = 147
min_lr_ratio = 0.1
decay_fraction = 0.2
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0
evals = 8
ema = 0.9

[runs.tags]
sweep = "isoflop"
budget = "1e+11"
"""
OLD_IDS = ["s-40d74db067115a3d", "s-bad6e76af939063a"]  # computed by 7863cab's load_plan


def test_a_valid_old_plan_keeps_the_ids_it_was_given(tmp_path: Path):
    path = tmp_path / "old.toml"
    path.write_text(OLD_PLAN)
    plan = load_plan(path)
    assert [r.run_id for r in plan.runs] == OLD_IDS
    assert plan.runs[0].train.lr == 1 and isinstance(plan.runs[0].train.lr, int)
    assert plan.runs[1].train.weight_decay == 0 and plan.runs[1].tags == {"sweep": "isoflop", "budget": "1e+11"}
    assert [n.split(";")[0] for n in plan.notes] == ["run 1 was edited since it was planned",
                                                      "run 2 was edited since it was planned"]


def test_the_schema_knows_every_setting_of_a_run_and_of_its_data():
    assert set(MODEL_RULES) == {f.name for f in fields(ModelConfig)}
    assert set(TRAIN_RULES) == {f.name for f in fields(TrainConfig)}
    assert set(DATA_RULES) == {f.name for f in fields(DataSpec)}
    assert set(MODEL_RULES) | set(TRAIN_RULES) < set(DefaultsSection.model_fields) < set(RunTable.model_fields)
    assert set(DataSection.model_fields) == set(DATA_RULES)


def _plan_doc(tmp_path: Path) -> dict:
    path = isoflop_plan([1e11], sizes=2, defaults=Defaults(seq_len=64, batch_tokens=1024)).save(
        tmp_path / "p.toml")
    return tomllib.loads(path.read_text())


def _write(tmp_path: Path, doc: dict, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    path.write_text(tomli_w.dumps(doc))
    return path


#: (section, key, value) -> (row, column, what the message says). Each of these either crashed
#: with a traceback, was silently ignored, or trained into nonsense before plans were checked.
CORRUPT = [
    ("run", "seq_len", 0, "run 1", "seq_len", "must be a whole number >= 2, not 0"),
    ("run", "tags", "x", "run 1", "tags", 'must be a table of KEY = "VALUE"'),
    ("run", "weight_decay", -1, "run 1", "weight_decay", "must be a finite number >= 0, not -1"),
    ("run", "weight_decay", math.nan, "run 1", "weight_decay", "not nan"),
    ("run", "warmup", 2.0, "run 1", "warmup", r"must be a finite number in \[0, 1\), not 2.0"),
    ("run", "steps", 10.5, "run 1", "steps", "must be a whole number .*, not 10.5"),
    ("data", "shuffle", True, "[data]", "shuffle", "unknown key; known keys: source, tokenizer, val_fraction"),
    ("run", "lr", True, "run 1", "lr", "must be a finite number > 0, not true"),
    ("run", "lr", math.inf, "run 1", "lr", "not inf"),
    ("run", "lr", "3e-3", "run 1", "lr", "not '3e-3'"),
    ("defaults", "batch_tokens", 1024.5, "[defaults]", "batch_tokens", "whole number >= 1, not 1024.5"),
    ("defaults", "learning_rate", 0.1, "[defaults]", "learning_rate", "unknown key"),
    ("run", "schedule", "cosin", "run 1", "schedule", "not 'cosin' \\(did you mean 'cosine'\\?\\)"),
    ("run", "positions", "alibi", "run 1", "positions", "one of 'rope', 'learned'"),
    ("run", "tie_embeddings", 1, "run 1", "tie_embeddings", "must be true or false, not 1"),
    ("run", "n_heads", 7, "run 1", "n_heads", "7 does not divide d_model = 16"),
    ("run", "vocab_size", 70_000, "run 1", "vocab_size", r"in \[2, 65536\]"),
    ("run", "seed", -1, "run 1", "seed", ">= 0, not -1"),
    ("run", "beta2", 1.0, "run 1", "beta2", r"in \[0, 1\)"),
    ("run", "evals", 0, "run 1", "evals", ">= 1, not 0"),
    ("run", "eval_tokens", 0, "run 1", "eval_tokens", ">= 1, not 0"),
    ("run", "grad_clip", -1.0, "run 1", "grad_clip", ">= 0"),
    ("run", "min_lr_ratio", 2, "run 1", "min_lr_ratio", r"in \[0, 1\]"),
    ("run", "decay_fraction", 0, "run 1", "decay_fraction", r"in \(0, 1\]"),
    ("run", "ema", 1.0, "run 1", "ema", r"in \[0, 1\)"),
    ("run", "budget", -5, "run 1", "budget", "> 0, not -5"),
    ("run", "ffn_ratio", 0.01, "run 1", "ffn_ratio", "MLP of width 0"),
    ("run", "batch_tokens", 32, "run 1", "batch_tokens", "does not hold one sequence of seq_len = 64"),
    ("run", "tags", {"$..*": "x"}, "run 1", "tags", "must be a word"),
    ("run", "tags", {"dataset": [1]}, "run 1", "tags", "string, number or boolean, not a list"),
    ("run", "run_id", 5, "run 1", "run_id", "non-empty string, not 5"),
    ("sweep", "name", 3, "[sweep]", "name", "non-empty string, not 3"),
    ("data", "val_fraction", 0.9, "[data]", "val_fraction", r"in \(0, 0.5\)"),
    ("data", "source", "", "[data]", "source", "non-empty string"),
]


@pytest.mark.parametrize(("section", "key", "value", "row", "column", "says"), CORRUPT,
                         ids=[f"{c[0]}.{c[1]}={c[2]!r}" for c in CORRUPT])
def test_a_bad_value_is_refused_at_load_naming_the_run_and_key(tmp_path, section, key, value,
                                                                row, column, says):
    doc = _plan_doc(tmp_path)
    target = doc["runs"][0] if section == "run" else doc[section]
    target[key] = value
    with pytest.raises(InputError, match=says) as exc:
        load_plan(_write(tmp_path, doc))
    err = exc.value
    assert (err.source, err.row, err.column) == (str(tmp_path / "bad.toml"), row, column)
    assert str(err).startswith(f"{tmp_path / 'bad.toml'}: {row}, column {column!r}: ")
    assert "\n" not in str(err) and "np." not in str(err)


def test_a_run_missing_a_setting_names_it_and_where_it_could_come_from(tmp_path):
    doc = _plan_doc(tmp_path)
    del doc["runs"][1]["d_model"]
    with pytest.raises(InputError, match="run 2, column 'd_model': is missing .*in \\[defaults\\]"):
        load_plan(_write(tmp_path, doc))


def test_whole_problems_with_the_file_are_named(tmp_path):
    doc = _plan_doc(tmp_path)
    cases = {
        "unknown section \\[run\\] \\(did you mean 'runs'\\?\\)": {**doc, "run": {"x": 1}},
        "no \\[\\[runs\\]\\] in this plan": {k: v for k, v in doc.items() if k != "runs"},
        "runs must be tables": {**doc, "runs": [1, 2]},
        "\\[defaults\\]: must be a table, not 3": {**doc, "defaults": 3},
        "run 2: identical to run 1": {**doc, "runs": [doc["runs"][0], dict(doc["runs"][0])]},
    }
    for says, bad in cases.items():
        with pytest.raises(InputError, match=says):
            load_plan(_write(tmp_path, bad))
    (tmp_path / "syntax.toml").write_text("[sweep\n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_plan(tmp_path / "syntax.toml")
    with pytest.raises(InputError, match="plan file not found"):
        load_plan(tmp_path / "missing.toml")
    with pytest.raises(InputError, match="is a folder"):
        load_plan(tmp_path)
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="not a text file"):
        load_plan(tmp_path / "binary.toml")


def test_several_problems_in_one_run_are_counted_in_one_line(tmp_path):
    doc = _plan_doc(tmp_path)
    doc["runs"][0] |= {"seq_len": 0, "lr": -1, "steps": 0.5}
    with pytest.raises(InputError, match=r"\(and 2 more problems there\)$"):
        load_plan(_write(tmp_path, doc))


def test_whole_number_floats_are_taken_as_integers(tmp_path):
    doc = _plan_doc(tmp_path)
    steps = doc["runs"][0]["steps"]
    doc["runs"][0]["steps"] = float(steps)  # `steps = 1e4` in a hand-written plan
    plan = load_plan(_write(tmp_path, doc))
    assert plan.runs[0].train.steps == steps and isinstance(plan.runs[0].train.steps, int)


def test_editing_a_written_figure_instead_of_a_setting_is_pointed_out(tmp_path):
    doc = _plan_doc(tmp_path)
    doc["runs"][0]["N"] = 5e6
    plan = load_plan(_write(tmp_path, doc))
    assert any(n.startswith("run 1: N = 5e+06 in the file, but its settings give") for n in plan.notes)


def test_a_batch_that_is_not_a_whole_number_of_sequences_is_noted(tmp_path):
    doc = _plan_doc(tmp_path)
    doc["runs"][0]["batch_tokens"] = 1000
    plan = load_plan(_write(tmp_path, doc))
    assert any("each step takes 15 sequences (960 tokens)" in n for n in plan.notes)


def test_configs_built_in_python_obey_the_same_rules():
    with pytest.raises(ParameterError, match="warmup must be a finite number in") as exc:
        TrainConfig(lr=1e-3, batch_tokens=256, steps=10, warmup=2.0)
    assert exc.value.parameters == ("warmup",)
    with pytest.raises(ParameterError, match="seq_len must be a whole number >= 2, not 0"):
        ModelConfig(d_model=32, n_layers=1, n_heads=2, seq_len=0)
    with pytest.raises(ParameterError, match="val_fraction"):
        DataSpec(val_fraction=0.7)
    with pytest.raises(ParameterError, match="batch_tokens .*seq_len") as exc:
        Defaults(seq_len=256, batch_tokens=128)
    assert exc.value.parameters == ("batch_tokens", "seq_len")


def test_planners_refuse_bad_numbers_naming_the_parameter():
    cases = [
        (lambda: isoflop_plan([-1.0]), "budgets"),
        (lambda: isoflop_plan([math.inf]), "budgets"),
        (lambda: isoflop_plan([]), "budgets"),
        (lambda: isoflop_plan([1e11], span=math.nan), "span"),
        (lambda: isoflop_plan([1e11], tokens_per_param=0.0), "tokens_per_param"),
        (lambda: isoflop_plan([1e11], sizes=0), "sizes"),
        (lambda: grid_plan([math.nan], [1024], [1e5]), "lrs"),
        (lambda: grid_plan([1e-3], [64], [1e5]), "batches"),  # < one sequence of 128
        (lambda: grid_plan([1e-3], [1024], [-1e5]), "sizes"),
        (lambda: grid_plan([1e-3], [1024], [1e5], tokens=0.0), "tokens"),
    ]
    for make, parameter in cases:
        with pytest.raises(ParameterError) as exc:
            make()
        assert exc.value.parameters == (parameter,) and str(exc.value).startswith(parameter)


def test_every_edge_the_schema_accepts_trains(tmp_path, monkeypatch):
    """Nothing accepted at load time fails at training time: runs at the rules' edges train."""
    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path / "cache"))
    words = ["def", "return", "self", "import", "class", "for", "in", "if", "else", "None"]
    import numpy as np

    (tmp_path / "c.txt").write_text(" ".join(np.random.default_rng(0).choice(words, 20_000)))
    base = {"d_model": 16, "n_layers": 1, "n_heads": 1, "lr": 1e-3, "batch_tokens": 64,
            "steps": 3, "eval_tokens": 64}
    edges = [
        {"seq_len": 2, "batch_tokens": 2, "warmup": 0, "weight_decay": 0, "grad_clip": 0,
         "evals": 1, "ema": 0, "eval_tokens": 1, "steps": 1},
        {"seq_len": 32, "schedule": "wsd", "decay_fraction": 1, "min_lr_ratio": 0, "beta1": 0,
         "positions": "learned", "tie_embeddings": False, "warmup": 0.99},
        {"seq_len": 32, "schedule": "constant", "min_lr_ratio": 1, "vocab_size": 65_536,
         "ffn_ratio": 0.07, "evals": 50, "seed": 2**40},  # ffn 0.07 x 16 -> an MLP of width 1
    ]
    plan_doc = {"sweep": {"name": "edges"}, "data": {"source": str(tmp_path / "c.txt")},
                "runs": [base | e for e in edges]}
    plan = load_plan(_write(tmp_path, plan_doc, "edges.toml"))
    report = run_plan(plan, RunStore(tmp_path / "s.duckdb"))
    assert (report.finished, report.failed) == (3, 0), report.errors


def test_a_plan_of_run_specs_round_trips_to_the_same_ids_whatever_its_defaults(tmp_path):
    data = DataSpec()
    runs = [RunSpec(ModelConfig(d_model=32, n_layers=1, n_heads=2, seq_len=32),
                    TrainConfig(lr=lr, batch_tokens=256, steps=5), data) for lr in (1e-3, 2e-3)]
    plan = SweepPlan("t", "custom", runs, data, defaults={"seq_len": 32})
    again = load_plan(plan.save(tmp_path / "t.toml"))
    assert [r.run_id for r in again.runs] == [r.run_id for r in runs]
