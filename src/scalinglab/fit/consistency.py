"""The 6ND consistency check, as the fits use it: the rule itself lives in
:mod:`scalinglab.runs.flops` (one rule, shared with ``scalinglab import``)."""

from scalinglab.runs.flops import (
    MEDIAN_TOL,
    ROW_TOL,
    FlopCheck,
    check_flops,
    d_exponent_note,
    parse_convention,
)

__all__ = ["MEDIAN_TOL", "ROW_TOL", "FlopCheck", "check_flops", "d_exponent_note",
           "parse_convention"]
