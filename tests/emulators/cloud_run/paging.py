"""Page tokens: opaque, bound to the list they came from, and stable while items are added.

A token names the last item of the page it ends (its sort key) and the
parent it lists, so a new execution created between two page reads neither
repeats nor hides an item, and a token used on another parent is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .errors import invalid_argument

T = TypeVar("T")
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000


def page(items: Sequence[T], key: Callable[[T], Any], parent: str, page_size: int,
         token: str) -> tuple[list[T], str]:
    """``items`` sorted by ``key``; the page after ``token`` and the token of the next page (``""`` if none)."""
    if page_size < 0:
        raise invalid_argument("page_size must not be negative.", [("page_size", "must not be negative")])
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    ordered = sorted(items, key=key)
    if token:
        after = _decode(token, parent)
        ordered = [item for item in ordered if _comparable(key(item)) > after]
    chunk = ordered[:size]
    more = len(ordered) > size
    return chunk, (_encode(parent, _comparable(key(chunk[-1]))) if more else "")


def _comparable(value: Any) -> list[Any]:
    return list(value) if isinstance(value, tuple) else [value]


def _encode(parent: str, after: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"p": parent, "a": after}).encode()).decode()


def _decode(token: str, parent: str) -> list[Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        after = data["a"]
        ok = data["p"] == parent and isinstance(after, list)
    except (ValueError, KeyError, TypeError, binascii.Error):
        ok = False
    if not ok:
        raise invalid_argument("Invalid page token.", [("page_token", "The page token is not valid for this list.")])
    return after
