"""Moved: :mod:`scalinglab.study.analysis` (the study layer computes what the report shows).

This name stays for code written against it; it is the same module object, so patching one
patches the other."""

import sys

from scalinglab.study import analysis as _analysis

sys.modules[__name__] = _analysis
