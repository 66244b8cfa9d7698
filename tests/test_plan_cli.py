"""`scalinglab plan`: JSON schema, the human table, and input errors."""

import json

import pytest
from typer.testing import CliRunner

from scalinglab.cli import app

runner = CliRunner()

KEYS = {
    "N", "D", "tokens_per_param", "train_flops", "inference_flops", "total_flops", "loss",
    "loss_interval", "loss_interval_source", "lr", "lr_law", "batch_tokens", "batch_sequences",
    "steps", "tau", "weight_decay", "seq_len", "warnings", "loss_law", "hparams_law",
}


def test_plan_json_schema():
    result = runner.invoke(app, ["plan", "--compute", "1e21", "--law", "besiroglu2024",
                                 "--hparams", "deepseek", "--seq-len", "4096", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) >= KEYS
    assert out["seq_len"] == 4096 and out["batch_tokens"] == out["batch_sequences"] * 4096
    assert out["loss_law"]["label"] == "besiroglu2024" and out["hparams_law"]["name"] == "deepseek"
    assert out["loss_interval"] is None


def test_plan_params_tokens_with_suffixes_and_inference():
    result = runner.invoke(app, ["plan", "--params", "1B", "--tokens", "20B",
                                 "--inference-tokens", "1T", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["N"] == 1e9 and out["D"] == 2e10 and out["inference_flops"] == pytest.approx(2e21)


def test_plan_table_by_default():
    result = runner.invoke(app, ["plan", "--compute", "1e20"])
    assert result.exit_code == 0, result.output
    assert "weight decay" in result.output and "predicted loss" in result.output


def test_plan_errors_are_one_line_exit_2():
    result = runner.invoke(app, ["plan", "--compute", "lots"])
    assert result.exit_code == 2 and "--compute" in result.output
    result = runner.invoke(app, ["plan", "--params", "1e9"])
    assert result.exit_code == 2 and "two of" in result.output
    result = runner.invoke(app, ["plan", "--compute", "1e21", "--law", "nope.json"])
    assert result.exit_code == 2 and "nope.json" in result.output
    assert "Traceback" not in result.output


def test_plan_help_has_an_example():
    result = runner.invoke(app, ["plan", "--help"])
    assert result.exit_code == 0 and "Example: scalinglab plan --compute" in result.output
