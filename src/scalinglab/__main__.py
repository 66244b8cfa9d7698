"""``python -m scalinglab``: the same command line as the ``scalinglab`` script.

For an environment where the script is not on PATH (a checkout on ``PYTHONPATH``, a venv not
activated); it imports only :mod:`scalinglab.cli`, so it starts as fast as the script does.
"""

from __future__ import annotations

from scalinglab.cli import app

if __name__ == "__main__":
    app(prog_name="scalinglab")
