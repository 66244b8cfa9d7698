"""Beyond loss: downstream metrics from the loss law, and benchmark accuracy from compute.

Public API (see each function's docstring)::

    fit_link(loss, metric, "exp" | "sigmoid", *, fixed=None, bootstrap=200) -> LinkFit
    fit_links(loss, {name: metric}, link, ...) -> LinkTable          # many metric columns
    chain(loss_law, link, N, D, *, seed=0) -> ChainedPrediction      # joint bootstrap
    fit_benchmark(C, accuracy, *, chance=0.25, fit_below=None) -> BenchmarkFit
    fit_benchmarks(C, {name: accuracy}, ...) -> BenchmarkTable
    fit_observational(scores, target, *, compute, family, fit_below) -> ObservationalFit

Link laws (data, with their starting grids): EXP_LINK (Gadre et al. 2024), SIGMOID_LINK,
sigmoid_in_scores(k) (Ruan et al. 2024).
"""

from scalinglab.downstream.benchmark import (
    BenchmarkFit,
    BenchmarkTable,
    fit_benchmark,
    fit_benchmarks,
)
from scalinglab.downstream.chain import ChainedPrediction, chain, loss_at
from scalinglab.downstream.link_fit import LinkFit, LinkTable, fit_link, fit_links
from scalinglab.downstream.links import (
    EXP_LINK,
    LINKS,
    SIGMOID_LINK,
    LinkForm,
    fit_form,
    get_link,
    sigmoid_in_scores,
)
from scalinglab.downstream.observational import ObservationalFit, components_of, fit_observational


def kinds() -> tuple[type, ...]:
    """The result classes of this package (for :func:`scalinglab.results.load_result`)."""
    from scalinglab.downstream.l2l import LossToLossFit, Translation
    from scalinglab.downstream.ladder import LadderFit

    return (BenchmarkFit, BenchmarkTable, ChainedPrediction, LinkFit, LinkTable, ObservationalFit,
            LossToLossFit, Translation, LadderFit)


__all__ = [
    "kinds",
    "EXP_LINK",
    "LINKS",
    "SIGMOID_LINK",
    "BenchmarkFit",
    "BenchmarkTable",
    "ChainedPrediction",
    "LinkFit",
    "LinkForm",
    "LinkTable",
    "ObservationalFit",
    "chain",
    "components_of",
    "fit_benchmark",
    "fit_benchmarks",
    "fit_form",
    "fit_link",
    "fit_links",
    "fit_observational",
    "get_link",
    "loss_at",
    "sigmoid_in_scores",
]
