"""A stand-in for ``prefect flow-run execute`` used by the burst tests.

Importing Prefect and running a real flow costs ~2 CPU-seconds per run; 50-run
bursts on a 2-core CI machine would measure CPU contention, not the dispatcher.
This script does what the engine does at the API level (Running, then
Completed) with plain HTTP, and records that it started, so tests can count
how many times each run's infrastructure was started.

Usage (as the job's command): python tests/e2e/fake_engine.py STARTS_FILE [SECONDS [FINAL_STATE_TYPE]]
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid

import httpx


def propose(client: httpx.Client, run_id: str, state_type: str) -> None:
    """Like the engine: a state Prefect does not accept ends the process with an error."""
    body = {"state": {"type": state_type, "name": state_type.title(),
                      "state_details": {"transition_id": str(uuid.uuid4())}}}
    response = client.post(f"/flow_runs/{run_id}/set_state", json=body)
    response.raise_for_status()
    answer = response.json()
    if answer.get("status") != "ACCEPT":
        print(json.dumps({"run": run_id, "proposed": state_type, "answer": answer.get("status"),
                          "details": answer.get("details")}), flush=True)
        sys.exit(3)


def main() -> int:
    starts_file, seconds = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    final = sys.argv[3] if len(sys.argv) > 3 else "COMPLETED"
    run_id = os.environ["PREFECT__FLOW_RUN_ID"]
    with open(starts_file, "a") as f:  # O_APPEND: lines from concurrent processes do not interleave
        f.write(run_id + "\n")
    with httpx.Client(base_url=os.environ["PREFECT_API_URL"], timeout=30) as client:
        propose(client, run_id, "RUNNING")
        time.sleep(seconds)
        propose(client, run_id, final)
    print(json.dumps({"run": run_id, "done": True}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
