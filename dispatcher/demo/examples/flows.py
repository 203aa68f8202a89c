"""Example flows deployed by ``dispatcher demo`` (and used by the end-to-end tests)."""

from __future__ import annotations

import time

from prefect import flow, get_run_logger


@flow(log_prints=True)
def hello(name: str = "world") -> str:
    """Completes: prints a greeting."""
    print(f"hello, {name}")
    return f"hello, {name}"


@flow
def fails(message: str = "this flow fails on purpose") -> None:
    """Ends Failed: raises."""
    get_run_logger().info("about to fail")
    raise RuntimeError(message)


@flow
def sleeps(seconds: float = 300.0) -> None:
    """Runs until cancelled, killed or timed out."""
    logger = get_run_logger()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        logger.info("still sleeping")
        time.sleep(1.0)


@flow(retries=1, retry_delay_seconds=3)
def flaky() -> str:
    """Fails its first run and succeeds on the engine's own retry (``retries=1``), on the same infrastructure."""
    from prefect.runtime import flow_run

    if flow_run.run_count <= 1:
        raise RuntimeError("first run fails on purpose")
    return "second run succeeded"
