"""Translate OSError (and corrupt run records) into the provider error tree."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from providers.errors import (
    CapacityError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)

# The machine is short of something that may be freed later: retrying can succeed.
_CAPACITY = {errno.ENOSPC, errno.EDQUOT, errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EAGAIN}
# Retrying the same call cannot change these.
_PERMANENT = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP}


def translate_os_error(
    exc: OSError, doing: str, permanent: type[PermanentProviderError] = PermanentProviderError
) -> ProviderError:
    """A provider error for ``exc``; the message names the operation and the errno, never file contents."""
    code = errno.errorcode.get(exc.errno or 0)
    message = f"local provider could not {doing}: {exc.strerror or type(exc).__name__}"
    if exc.errno in _CAPACITY:
        return CapacityError(message, code=code)
    if exc.errno in _PERMANENT:
        return permanent(message, code=code)
    return TransientProviderError(message, code=code)


@contextmanager
def provider_errors(doing: str, permanent: type[PermanentProviderError] = PermanentProviderError) -> Iterator[None]:
    """Let provider errors through; turn OSError and unreadable run records into provider errors."""
    try:
        yield
    except ProviderError:
        raise
    except OSError as exc:
        raise translate_os_error(exc, doing, permanent) from exc
    except (ValueError, KeyError, TypeError) as exc:  # a run record that is not the JSON we wrote
        raise PermanentProviderError(
            f"local provider could not {doing}: unreadable run record ({type(exc).__name__})", code="CorruptRunRecord"
        ) from exc
