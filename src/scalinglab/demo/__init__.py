"""``scalinglab demo``: plan, train, fit, check, plan bigger and report, from nothing, on a CPU."""

from scalinglab.demo.job import (
    DemoResult,
    Extrapolation,
    demo_isoflop_plan,
    extrapolation_check,
    run_demo,
)

__all__ = ["DemoResult", "Extrapolation", "demo_isoflop_plan", "extrapolation_check", "run_demo"]
