"""Push execution for Prefect work pools: the dispatcher core."""

__version__ = "0.1.0"
