"""scalinglab: make neural-network training predictable at scale."""

__version__ = "0.1.0"
