"""Exit codes of the ``dispatcher`` command and the error that carries them (no traceback, one line each)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

#: argparse's own code for a bad command line.
EXIT_USAGE = 2
#: The configuration file is missing, unreadable or invalid.
EXIT_CONFIG = 3
#: A dependency is unreachable or refuses us (Prefect, its auth, the ledger, a provider's SDK or
#: credentials), or a configured pool is unknown or not a push type.
EXIT_DEPENDENCY = 4
#: The service port cannot be bound.
EXIT_PORT = 5


class StartupError(Exception):
    """The dispatcher cannot start; ``lines`` are printed as they are, ``exit_code`` is the process's."""

    def __init__(self, lines: str | list[str], exit_code: int = EXIT_DEPENDENCY) -> None:
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        self.exit_code = exit_code
        super().__init__("\n".join(self.lines))


def safe_url(url: str) -> str:
    """``url`` without a password in it (an operator may write http://user:pass@host/api)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:<hidden>@{host}"))


def describe_exception(exc: BaseException) -> str:
    """``ClassName: first line of the message`` (drivers add SQL and links on later lines)."""
    cause = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0]}" if text else type(cause).__name__
