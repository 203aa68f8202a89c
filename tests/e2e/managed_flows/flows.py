"""A flow for Prefect Managed end-to-end tests: it imports a package a pool's pip_packages installed."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

from prefect import flow


@flow
def imports(module: str, report: str) -> str:
    """Import ``module`` and write where it and the interpreter came from to ``report``."""
    found = importlib.import_module(module)
    Path(report).write_text(json.dumps({"module": found.__file__, "prefix": sys.prefix}))
    return found.__name__
