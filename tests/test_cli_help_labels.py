"""Arguments in --help carry the options' conventional labels, never a Python type name."""

import re

import pytest
from typer.testing import CliRunner

from scalinglab.cli import app


@pytest.mark.parametrize(("command", "expected"), [
    (["import"], ["FILE <path>"]),  # read as text (a URI with --from), still a file to the reader
    (["fit", "law"], ["NAME <text>", "FILE <path>"]),
    (["testtime", "samples-for-coverage"], ["SOURCE <path>"]),
    (["fit", "chinchilla"], ["FILE <path>"]),
])
def test_arguments_show_conventional_labels(command, expected):
    res = CliRunner().invoke(app, [*command, "--help"], terminal_width=120)
    assert res.exit_code == 0, res.output
    arguments = res.output.split("Arguments:")[1].split("Options:")[0]
    labels = re.findall(r"^  (\S+ <[^>]+>)", arguments, re.M)
    assert labels == expected
    assert not re.search(r"<(str|int|float|bool)>", res.output)
