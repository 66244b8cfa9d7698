"""Summarise the Step Law authors' 1,000 bootstrap fits into package data (run once).

The planner needs Step Law's uncertainty, not the raw file: a mean and covariance of the five
log-space coefficients give the band of ``ln lr`` and ``ln batch`` at any (N, D) in closed form
(``x' S x``), which the marginal quantiles alone cannot (intercept and slopes are strongly
correlated). Quantiles are kept to report the published spread as it is.

    python scripts/make_steplaw_summary.py ../shared/data/steplaw/1004_fitted_lr_bs_scaling_model_parameters.csv
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["lr_intercept", "lr_coefN", "lr_coefD", "bs_intercept", "bs_coefD"]
OUT = Path(__file__).resolve().parents[1] / "src" / "scalinglab" / "data" / "steplaw_bootstrap.json"


def summarise(path: Path) -> dict:
    draws = pd.read_csv(path)[COLUMNS].to_numpy(dtype=float)
    qs = (0.025, 0.05, 0.5, 0.95, 0.975)
    return {
        "source": "Li et al. 2025, 'Predictable Scale: Part I' (Step Law): the authors' 1,000 "
        "bootstrap fits, file data/1004_fitted_lr_bs_scaling_model_parameters.csv of "
        "github.com/step-law/steplaw",
        "model": "ln lr = lr_intercept + lr_coefN ln N + lr_coefD ln D; "
        "ln batch_tokens = bs_intercept + bs_coefD ln D",
        "columns": COLUMNS,
        "n": int(len(draws)),
        "mean": draws.mean(axis=0).tolist(),
        "std": draws.std(axis=0, ddof=1).tolist(),
        "cov": np.cov(draws, rowvar=False).tolist(),
        "quantiles": {str(q): np.quantile(draws, q, axis=0).tolist() for q in qs},
    }


def main() -> None:
    default = Path("../shared/data/steplaw/1004_fitted_lr_bs_scaling_model_parameters.csv")
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    OUT.write_text(json.dumps(summarise(path), indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
