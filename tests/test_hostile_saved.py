"""Every saved file a command reads back (issue 25): results, laws, links, tau, coverage fits,
`sweep auto` state, `--set` JSON go through one bounded, validated loader, so any malformed
file -- nested 100k deep, a list or string for an object, a level outside (0, 1), draws of
the wrong shape, missing keys, Latin-1 bytes, a folder, /dev/zero -- is one line naming the
file (and the field), exit 2, no traceback, within a time limit, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_hostile_files import FIT_CSV, digest, refused
from typer.testing import CliRunner

from scalinglab.cli import app
from scalinglab.runs.store import RunStore

runner = CliRunner()


@pytest.fixture(scope="module")
def saved_fit(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("fit")
    (folder / "runs.csv").write_text(FIT_CSV)
    res = runner.invoke(app, ["fit", "chinchilla", str(folder / "runs.csv"), "--bootstrap", "5",
                              "--save", str(folder / "fit.json")])
    assert res.exit_code == 0, res.output
    return json.loads((folder / "fit.json").read_text())


def _fit_with(**changes):
    def make(fit: dict) -> bytes:
        return json.dumps({**fit, **changes}).encode()
    return make


#: name -> (file content: bytes, or a function of a valid saved fit; what the line says)
ATTACKS = {
    "deep": (b"[" * 100_000 + b"]" * 100_000, "nested 100000 levels deep"),
    "deep-object": (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "levels deep"),
    "list": (b"[1, 2, 3]", ""),
    "string": (b'"a saved fit"', ""),
    "missing-keys": (b'{"kind": "loss_fit"}', ""),
    "unknown-kind": (b'{"kind": "nonsense"}', "kind 'nonsense'"),
    "latin1": ('{"kind": "caf\xe9"}'.encode("latin-1"), "not UTF-8"),
    "huge-int": (b'{"kind": "loss_fit", "level": ' + b"9" * 5000 + b"}", ""),
    "empty": (b"", "not JSON"),
    "level-1.5": (_fit_with(level=1.5), "field 'level'"),
    "level-0": (_fit_with(level=0), "field 'level'"),
    "draws-ragged": (_fit_with(draws=[[1.0, 2.0], [3.0]]), "field 'draws'"),
    "draws-narrow": (_fit_with(draws=[[1.0, 2.0], [3.0, 4.0]]), "values per draw"),
    "draws-text": (_fit_with(draws=[["a", "b", "c", "d", "e"]]), "field 'draws"),
    "params-inf": (_fit_with(params={"E": 1e400, "A": 1, "B": 1, "alpha": 0.3, "beta": 0.3}),
                   "field 'params'"),
    "params-list": (_fit_with(params=[1, 2]), "field 'params'"),
    "run-ids-number": (_fit_with(run_ids=5), "field 'run_ids'"),
    "no-params": (lambda fit: json.dumps({k: v for k, v in fit.items() if k != "params"}).encode(),
                  ""),
}

#: the commands that read a saved file, FILE standing for it
LOADERS = {
    "plan-law": ["plan", "--compute", "1e21", "--law", "FILE"],
    "plan-tau": ["plan", "--compute", "1e21", "--tau", "FILE"],
    "simulate-truth": ["simulate", "--truth", "FILE", "--spend", "1e20", "--target", "1e22",
                       "--repeats", "1"],
    "report-result": ["report", "--result", "FILE", "--store", "STORE", "--out", "OUT"],
    "predict-loss-law": ["predict", "downstream", "--loss-law", "FILE", "--link", "FILE",
                         "--params", "1e9", "--tokens", "2e10"],
    "predict-link": ["predict", "downstream", "--loss-law", "hoffmann2022", "--link", "FILE",
                     "--params", "1e9", "--tokens", "2e10"],
    "hparams-law": ["hparams", "predict", "--law", "FILE", "--params", "1e9", "--tokens", "2e10"],
    "coverage-fit": ["testtime", "samples-for-coverage", "FILE", "--coverage", "0.9"],
}


#: loaders of another kind of result than a loss-law fit
OTHER_KINDS = {"plan-tau", "predict-link", "hparams-law", "coverage-fit"}


def _args(loader: str, path: Path, tmp_path: Path) -> list[str]:
    store = tmp_path / "runs.duckdb"
    if not store.exists():
        (tmp_path / "runs.csv").write_text(FIT_CSV)
        RunStore(store).import_file(tmp_path / "runs.csv")
    return [str(path) if a == "FILE" else str(store) if a == "STORE" else
            str(tmp_path / "out.html") if a == "OUT" else a for a in LOADERS[loader]]


#: every attack on one loader; a core of them on every other (they share one loader)
CORE = ("deep", "list", "string", "missing-keys", "latin1", "level-1.5", "draws-narrow")
CASES = [("plan-law", a) for a in ATTACKS] + [(loader, a) for loader in LOADERS
                                              if loader != "plan-law" for a in CORE]


@pytest.mark.parametrize(("loader", "attack"), CASES, ids=[f"{lo}-{a}" for lo, a in CASES])
def test_a_malformed_saved_file_is_one_line_for_every_loader(tmp_path, saved_fit, loader, attack):
    content, says = ATTACKS[attack]
    if callable(content) and loader in OTHER_KINDS:
        says = "a saved loss_fit result, not"  # the kind is checked before anything else
    path = tmp_path / "saved.json"
    path.write_bytes(content(saved_fit) if callable(content) else content)
    args = _args(loader, path, tmp_path)
    line = refused(args, tmp_path, says, seconds=60)
    assert str(path) in line or "saved.json" in line, line


@pytest.mark.parametrize("loader", list(LOADERS))
@pytest.mark.parametrize("what", ["folder", "dev-zero", "fifo"])
def test_a_saved_file_that_is_not_a_file_is_refused_by_name(tmp_path, loader, what):
    import os

    if what == "folder":
        path = tmp_path / "saved.json"
        path.mkdir()
    elif what == "fifo":
        path = tmp_path / "saved.json"
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    refused(_args(loader, path, tmp_path), tmp_path, "", seconds=60)


def test_a_saved_file_through_the_library_is_the_same_one_line(tmp_path, saved_fit):
    from scalinglab.errors import InputError
    from scalinglab.results import load_result

    path = tmp_path / "fit.json"
    path.write_text(json.dumps({**saved_fit, "draws": [[1.0]] * 3}))
    with pytest.raises(InputError, match=r"fit\.json: field 'draws'"):
        load_result(path)
    path.write_text(json.dumps(saved_fit))
    assert load_result(path).kind == saved_fit["kind"]


STATE_ATTACKS = {
    "deep": (b"[" * 100_000, "levels deep"),
    "list": (b"[]", "state file"),
    "rounds-not-list": (b'{"version": 1, "rounds": 3}', "state file"),
    "target-text": (b'{"version": 1, "rounds": [], "target": "big", "spend": 1e20}',
                    "field 'target'"),
    "plan-escapes": (b'{"version": 1, "rounds": [{"plan": "/etc/passwd"}], "target": 1e22, '
                     b'"spend": 1e20}', "field 'rounds.0.plan'"),
    "latin1": (b'{"version": 1, "x": "\xe9"}', "not UTF-8"),
}


@pytest.mark.parametrize("attack", list(STATE_ATTACKS))
def test_a_malformed_sweep_auto_state_is_one_line(tmp_path, attack):
    from scalinglab.design.auto import STATE_FILE, STATE_VERSION

    content, says = STATE_ATTACKS[attack]
    study = tmp_path / "study"
    study.mkdir()
    (study / STATE_FILE).write_bytes(content.replace(b'"version": 1',
                                                     f'"version": {STATE_VERSION}'.encode()))
    text = tmp_path / "corpus.txt"
    text.write_text("lambda yield async await " * 3000)
    before = digest(tmp_path)
    refused(["sweep", "auto", "--target", "1e22", "--spend", "1e20", "--out", str(study),
             "--data", str(text), "--store", str(tmp_path / "s.duckdb")], tmp_path, says,
            seconds=120)
    assert digest(tmp_path) == before


@pytest.mark.parametrize(("content", "says"), [
    (b"[" * 100_000, "levels deep"), (b'"x"', "expected an object"),
    (b'{"r": 3}', "expected an object of values"), (b"\xe9", "not UTF-8"),
])
def test_a_malformed_set_json_is_one_line(tmp_path, content, says):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(tmp_path / "tb" / "run1")
    w.add_scalar("train/loss", 3.0, 1)
    w.close()
    (tmp_path / "sizes.json").write_bytes(content)
    refused(["import", str(tmp_path / "tb"), "--from", "tensorboard", "--set",
             str(tmp_path / "sizes.json"), "--store", str(tmp_path / "s.duckdb")], tmp_path, says)


@pytest.mark.parametrize(("args", "expected"), [
    (["predict", "curve", "--fit", "FILE", "--schedule", "cosine:steps=100,peak=1e-3"], "curve fit"),
    (["predict", "loss-to-loss", "--fit", "FILE", "--x", "3"], "loss-to-loss law"),
])
@pytest.mark.parametrize("kind", ["loss_fit", "tally_fit"])
def test_a_file_of_the_wrong_kind_is_one_short_line_saying_what_it_is_and_what_was_wanted(
        tmp_path, saved_fit, args, expected, kind):
    """A chinchilla fit given to ``predict curve --fit`` (or a file of a kind nothing reads
    back) used to print the catalogue of ~30 result kinds; the line now names the file's kind
    and the kind wanted, and nothing else."""
    path = tmp_path / "saved.json"
    path.write_text(json.dumps(saved_fit if kind == "loss_fit" else {"kind": kind}))
    line = refused([str(path) if a == "FILE" else a for a in args], tmp_path, expected)
    assert kind in line and "saved.json" in line and len(line.replace(str(path), "")) < 180, line
    assert "pass_at_k" not in line and "known:" not in line, line


def test_an_unknown_kind_through_the_library_is_one_short_line(tmp_path):
    from scalinglab.errors import InputError
    from scalinglab.results import load_result

    path = tmp_path / "tally.json"
    path.write_text('{"kind": "tally_fit"}')
    with pytest.raises(InputError, match=r"kind 'tally_fit' is not a result kind") as err:
        load_result(path)
    assert len(str(err.value)) < 200 and "pass_at_k" not in str(err.value)
