"""The one default home of everything the dispatcher keeps on disk (ledger, local run records).

``$DISPATCHER_STATE_DIR``, else ``~/.local/state/prefect-push-dispatcher``. Standard library only.
"""

from __future__ import annotations

import os
from pathlib import Path

STATE_HOME = Path(os.environ.get("DISPATCHER_STATE_DIR", "~/.local/state/prefect-push-dispatcher")).expanduser()
