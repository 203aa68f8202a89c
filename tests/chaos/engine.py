"""The chaos suite's stand-in for ``prefect flow-run execute`` (cf. tests/e2e/fake_engine.py).

It proposes Running, sleeps, proposes the final state, with plain HTTP straight to the
Prefect server (not through the dispatcher's fault proxy), and rides out a Prefect restart:
a refused connection or a 5xx is retried until a deadline, and an answer lost to a restart
is recognised by reading the run (it is already in the proposed state).

Usage (as the job's command): python engine.py API_URL SECONDS [FINAL_STATE_TYPE]
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid

import httpx

DEADLINE_S = 180.0


def _call(client: httpx.Client, method: str, path: str, **kwargs) -> httpx.Response:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            response = client.request(method, path, **kwargs)
            if response.status_code < 500:
                response.raise_for_status()
                return response
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"Prefect unreachable for {DEADLINE_S}s")
        time.sleep(0.5)


def propose(client: httpx.Client, run_id: str, state_type: str) -> None:
    body = {"state": {"type": state_type, "name": state_type.title(),
                      "state_details": {"transition_id": str(uuid.uuid4())}}}
    answer = _call(client, "POST", f"/flow_runs/{run_id}/set_state", json=body).json()
    if answer.get("status") == "ACCEPT":
        return
    current = _call(client, "GET", f"/flow_runs/{run_id}").json()["state"]["type"]
    if current != state_type:  # not our own earlier proposal whose answer was lost
        print(json.dumps({"run": run_id, "proposed": state_type, "answer": answer.get("status"),
                          "current": current}), flush=True)
        sys.exit(3)


def main() -> int:
    api_url, seconds = sys.argv[1], float(sys.argv[2])
    final = sys.argv[3] if len(sys.argv) > 3 else "COMPLETED"
    run_id = os.environ["PREFECT__FLOW_RUN_ID"]
    with httpx.Client(base_url=api_url, timeout=10) as client:
        propose(client, run_id, "RUNNING")
        time.sleep(seconds)
        propose(client, run_id, final)
    return 0


if __name__ == "__main__":
    sys.exit(main())
