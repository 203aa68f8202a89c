"""``dispatcher check`` for the local provider: its state directory and its supervisor's interpreter.

Nothing is created: a missing ``state_dir`` is fine when serve could create it.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from providers.base import SettingsFinding
from providers.local.config import LocalSettings

#: The supervisor uses the standard library only, but syntax of Python 3.10.
MIN_PYTHON = (3, 10)
PYTHON_TIMEOUT_S = 20.0
_VERSION = "import sys; print('%d.%d' % sys.version_info[:2])"


async def check_local_settings(settings: LocalSettings) -> list[SettingsFinding]:
    return [_state_dir(settings.state_dir), await _python(settings.python)]


def _state_dir(state_dir: Path) -> SettingsFinding:
    if state_dir.exists():
        if not state_dir.is_dir():
            return SettingsFinding(level="fail", message=f"state_dir {state_dir} exists but is not a directory")
        if not os.access(state_dir, os.W_OK | os.X_OK):
            return SettingsFinding(level="fail", message=f"state_dir {state_dir} is not writable")
        return SettingsFinding(level="ok", message=f"state_dir {state_dir} writable")
    parent = state_dir.parent
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        message = f"state_dir {state_dir} cannot be created: {parent} is not writable"
        return SettingsFinding(level="fail", message=message)
    return SettingsFinding(level="ok", message=f"state_dir {state_dir} does not exist yet; serve creates it")


async def _python(python: str) -> SettingsFinding:
    try:
        process = await asyncio.create_subprocess_exec(
            python, "-c", _VERSION, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
    except OSError as exc:
        return SettingsFinding(level="fail", message=f"python {python} cannot be run: {exc.strerror or exc}")
    try:
        output, _ = await asyncio.wait_for(process.communicate(), PYTHON_TIMEOUT_S)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        return SettingsFinding(level="fail", message=f"python {python} did not answer within {PYTHON_TIMEOUT_S:g} s")
    version = output.decode(errors="replace").strip()
    if process.returncode != 0 or not re.fullmatch(r"\d+\.\d+", version):
        return SettingsFinding(level="fail", message=f"python {python} exited with code {process.returncode}")
    if tuple(int(part) for part in version.split(".")) < MIN_PYTHON:
        needed = ".".join(map(str, MIN_PYTHON))
        return SettingsFinding(level="fail", message=f"python {python} is {version}; the supervisor needs {needed}+")
    return SettingsFinding(level="ok", message=f"python {python} runs (Python {version})")
