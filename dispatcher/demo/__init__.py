"""``dispatcher demo``: a temporary Prefect server (``embedded``), example flows (``examples``), the demo itself (``run``)."""
