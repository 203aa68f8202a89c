"""``pip_packages`` on the local provider: one cached virtual environment per package set (standard library only).

A run whose configuration lists ``pip_packages`` does not run its command directly: the
supervisor runs this file with the dispatcher's interpreter, which makes sure the
environment of that package set exists, then execs the command with the environment's
``python`` (``prefect ...`` becomes ``<env>/bin/python -m prefect ...``). So installation is
part of the run (its output, its limits, its compute), as in a Prefect Managed container
whose entrypoint installs ``EXTRA_PIP_PACKAGES``, and runs with packages always start cold.

* One environment per normalised package set and Python version, under ``envs_dir``
  (``~/.local/state/prefect-push-dispatcher/local-envs`` by default, next to the run
  directories). Built once: a build holds an exclusive ``flock`` on ``<key>.lock``; runs of
  the same set that start meanwhile wait on it and then use the finished environment. A
  ``.ready`` marker is written last, so a build that died is started over.
* Nothing is installed into the dispatcher's environment: ``venv --without-pip`` and the
  dispatcher's pip pointed at the new interpreter (``pip --python``). The new environment
  sees the dispatcher's site-packages through a ``.pth`` file, after its own: Prefect and
  its dependencies are not installed again per set (seconds, not minutes, and no copy of
  Prefect per set), and a requirement pinned to another version of one of them is
  installed into the environment, where it wins (pip never uninstalls outside it).
  ``venv --system-site-packages`` would not do: from a virtualenv it exposes the *base*
  interpreter's site-packages, not the dispatcher's.
* A failed installation ends the run with exit code 1 and, as the last line of its
  output (the run's Crashed message quotes it), which packages could not be installed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

READY = ".ready"
INSTALL_FAILED_EXIT = 1


def environment_key(packages: list[str], python: tuple[int, int] | None = None) -> str:
    """The cache key: the package set (normalised by the dispatcher: sorted, no spaces) and the Python version."""
    major, minor = python or sys.version_info[:2]
    text = json.dumps({"python": f"{major}.{minor}", "packages": sorted(packages)})
    return f"py{major}{minor}-" + hashlib.sha256(text.encode()).hexdigest()[:20]


def in_environment(argv: list[str], packages: list[str] | None, envs_dir: Path) -> list[str]:
    """The argv the supervisor runs: unchanged without packages, else this file first (the provider's hook)."""
    if not packages:
        return argv
    return [sys.executable, str(Path(__file__).resolve()), "--envs-dir", str(envs_dir),
            "--packages", json.dumps(list(packages)), "--", *argv]


class InstallFailed(Exception):
    """pip could not install the package set; the message names the packages and pip's last lines."""


def ensure_environment(envs_dir: Path, packages: list[str]) -> Path:
    """The environment of ``packages`` (built now if needed, once across processes); returns its directory."""
    key = environment_key(packages)
    env_dir = envs_dir / key
    if (env_dir / READY).exists():
        return env_dir
    envs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(envs_dir / f"{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when we exit, even killed
        if not (env_dir / READY).exists():
            _build(env_dir, packages)
    return env_dir


def _build(env_dir: Path, packages: list[str]) -> None:
    shutil.rmtree(env_dir, ignore_errors=True)  # a build that died halfway
    print(f"creating the environment for pip_packages {', '.join(packages)} in {env_dir}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True,
                   stdout=subprocess.DEVNULL)
    python = env_dir / "bin" / "python"
    target_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, capture_output=True, text=True).stdout.strip()
    Path(target_site, "_dispatcher_site.pth").write_text("".join(f"{path}\n" for path in _dispatcher_site()))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-input", "--disable-pip-version-check",
         "--no-warn-script-location", *packages],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(result.stdout, end="", flush=True)
    if result.returncode != 0:
        shutil.rmtree(env_dir, ignore_errors=True)
        # pip's errors were printed above: the summary is the output's last line, quoted in the Crashed message.
        raise InstallFailed(f"pip_packages: could not install {', '.join(packages)} "
                            f"(pip exited {result.returncode}); the flow did not start.")
    (env_dir / READY).write_text("")


def _dispatcher_site() -> list[str]:
    """The dispatcher's site-packages directories (and its user site, if it uses one)."""
    paths = list(site.getsitepackages())
    if site.ENABLE_USER_SITE and os.path.isdir(site.getusersitepackages()):
        paths.append(site.getusersitepackages())
    return paths


def command_in(env_dir: Path, argv: list[str]) -> list[str]:
    """The command run by the environment's python: ``prefect``/``python`` resolve to the environment's."""
    python = str(env_dir / "bin" / "python")
    program = os.path.basename(argv[0])
    if program == "prefect":
        return [python, "-m", "prefect", *argv[1:]]
    if program in ("python", "python3", f"python{sys.version_info.major}.{sys.version_info.minor}"):
        return [python, *argv[1:]]
    return argv


def main(args: list[str]) -> int:
    separator = args.index("--")
    options, argv = args[:separator], args[separator + 1:]
    envs_dir = Path(options[options.index("--envs-dir") + 1])
    packages = json.loads(options[options.index("--packages") + 1])
    try:
        env_dir = ensure_environment(envs_dir, packages)
    except (InstallFailed, subprocess.CalledProcessError, OSError) as exc:
        print(exc if isinstance(exc, InstallFailed) else
              f"pip_packages: could not create the environment for {', '.join(packages)}: {exc}", flush=True)
        return INSTALL_FAILED_EXIT
    env = dict(os.environ, VIRTUAL_ENV=str(env_dir), PATH=f"{env_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    command = command_in(env_dir, argv)
    program = shutil.which(command[0], path=env["PATH"]) or command[0]
    try:
        os.execve(program, command, env)
    except OSError as exc:
        print(f"cannot run {command[0]!r} in the pip_packages environment: {exc.strerror}", flush=True)
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
