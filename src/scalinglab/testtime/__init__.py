"""Test-time scaling: pass@k, coverage against samples, budgets, imperfect verifiers.

Public API (see each function's docstring)::

    read_counts(path, problem=, n=, c=, correct=, model=) -> {model: ProblemCounts}
    pass_at_k(n, c, k) -> (problems, len(k))             # Chen et al. 2021, unbiased
    estimate_pass_at_k(counts, k, *, bootstrap=1000) -> PassAtK
    fit_coverage(counts, k, *, bootstrap=500) -> CoverageFit    # log coverage = a k^b
    CoverageFit.samples_for(0.9) -> Estimate
    compare_at_budget([Option(name, coverage, SampleCost(...)), ...], budgets) -> BudgetComparison
    analyze_verifier(counts, Verifier(recall, false_positive_rate), k) -> VerifierAnalysis
"""

from scalinglab.testtime.budget import BudgetComparison, Option, SampleCost, compare_at_budget
from scalinglab.testtime.counts import ProblemCounts, counts, read_counts
from scalinglab.testtime.coverage import COVERAGE_LAW, CoverageFit, fit_coverage
from scalinglab.testtime.passk import PassAtK, default_ks, estimate_pass_at_k, pass_at_k
from scalinglab.testtime.verifier import (
    Verifier,
    VerifierAnalysis,
    analyze_verifier,
    ceiling,
    verified_success,
)


def kinds() -> tuple[type, ...]:
    """The result classes of this package (for :func:`scalinglab.results.load_result`)."""
    return (BudgetComparison, CoverageFit, PassAtK, VerifierAnalysis)


__all__ = [
    "kinds",
    "COVERAGE_LAW",
    "BudgetComparison",
    "CoverageFit",
    "Option",
    "PassAtK",
    "ProblemCounts",
    "SampleCost",
    "Verifier",
    "VerifierAnalysis",
    "analyze_verifier",
    "ceiling",
    "compare_at_budget",
    "counts",
    "default_ks",
    "estimate_pass_at_k",
    "fit_coverage",
    "pass_at_k",
    "read_counts",
    "verified_success",
]
