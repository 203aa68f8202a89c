"""The HTTP surface: liveness, readiness and metrics (``app``)."""
