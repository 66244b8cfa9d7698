"""The planner: budget -> N, D, steps, loss with interval, lr, batch, weight decay."""

from scalinglab.plan.planner import Plan, make_plan

__all__ = ["Plan", "make_plan"]
