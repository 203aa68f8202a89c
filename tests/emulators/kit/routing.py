"""Routing for REST clouds: a table of routes, each an HTTP method and a path pattern, matched in order.

Cloud Run (``POST /v2/projects/{p}/locations/{l}/jobs/{job}:run``) and ARM
(``PUT /subscriptions/{sub}/resourceGroups/{rg}/providers/...``) route by
method and path; ECS routes by ``X-Amz-Target`` and needs none of this. A
cloud's route type carries what it needs on top of ``method`` and
``pattern`` (operation name, IAM permission, request and response schema);
the pattern's named groups are the path parameters. Whether paths match
case-insensitively (ARM does) is the pattern's own flag.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar


class PathRoute(Protocol):
    @property
    def method(self) -> str: ...

    @property
    def pattern(self) -> re.Pattern[str]: ...


R = TypeVar("R", bound=PathRoute)


@dataclass(frozen=True)
class RouteMatch(Generic[R]):
    route: R | None
    """The first route with this method whose pattern matches the whole path; None if there is none."""
    params: dict[str, str]
    """The pattern's named groups (``{"job": "my-job"}``); empty without a route."""
    path_known: bool
    """The path matches some route (under this method or another): without a route, a 405 rather than a 404."""


def match_route(routes: Iterable[R], method: str, path: str) -> RouteMatch[R]:
    path_known = False
    for route in routes:
        found = route.pattern.fullmatch(path)
        if found:
            path_known = True
            if route.method == method:
                return RouteMatch(route, found.groupdict(), True)
    return RouteMatch(None, {}, path_known)
