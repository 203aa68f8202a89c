"""The usage page of a workspace: rendered on the server, one HTML document, no script, no asset from elsewhere.

``GET /ui/workspaces/{workspace}?month=YYYY-MM`` shows the month: used against the budget
(ok, warning from 80 %, exceeded at 100 %), a daily bar chart (inline SVG), the pools and
deployments, the latest runs with links to Prefect's UI, and a CSV link. Without a token it
asks for one (401 and a form); the form's POST sets an HttpOnly, SameSite=Strict cookie, since a
browser cannot send an Authorization header when it follows a link.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from dispatcher.ledger.usage import GroupBy, RunFilter
from dispatcher.policy.budget import WARNING_RATIO
from dispatcher.usage.costs import ui_base_url
from dispatcher.usage.report import budget_report, runs_page, usage_report
from dispatcher.web.api import csv_response
from dispatcher.web.auth import COOKIE, page_token
from dispatcher.web.chart import daily_chart
from dispatcher.web.context import MONTH_PATTERN, UsageContext

_TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                         autoescape=select_autoescape(default=True))
_MONTH = re.compile(MONTH_PATTERN)
LATEST_RUNS = 20
#: A page form is small; anything bigger is not ours.
_MAX_FORM_BYTES = 4096


def page_router(context: UsageContext) -> APIRouter:
    router = APIRouter(prefix="/ui", include_in_schema=False)

    @router.get("/workspaces/{workspace}", response_class=HTMLResponse)
    async def usage_page(request: Request, workspace: str, month: str | None = None) -> Response:
        month = month if month and _MONTH.match(month) else context.month(None)
        denied = _denied(context, request, workspace, month)
        if denied is not None:
            return denied
        return HTMLResponse(await _render_usage(context, workspace, month))

    @router.get("/workspaces/{workspace}/usage.csv")
    async def usage_csv(request: Request, workspace: str, month: str | None = None) -> Response:
        month = month if month and _MONTH.match(month) else context.month(None)
        return _denied(context, request, workspace, month) or csv_response(context, workspace, month)

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await _form(request)
        workspace, month = form.get("workspace", ""), form.get("month", "")
        month = month if _MONTH.match(month) else context.month(None)
        if context.tokens.identify(form.get("token")) is None:
            return _token_form(workspace, month, 401, "That token was not accepted.")
        target = f"/ui/workspaces/{quote(workspace, safe='')}?month={month}"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, form["token"], httponly=True, samesite="strict", path="/ui",
                            secure=request.url.scheme == "https")
        return response

    return router


def _denied(context: UsageContext, request: Request, workspace: str, month: str) -> Response | None:
    """None when the caller may read ``workspace``; else the 401 form or a plain 403/404 page."""
    try:
        context.tokens.authorise(page_token(request), workspace)
        context.workspace(workspace)
    except HTTPException as refused:
        if refused.status_code == 401:
            return _token_form(workspace, month, 401, "")
        return HTMLResponse(_TEMPLATES.get_template("refused.html").render(message=refused.detail),
                            status_code=refused.status_code)
    return None


async def _render_usage(context: UsageContext, name: str, month: str) -> str:
    workspace, now, prices = context.workspace(name), context.clock(), context.config.prices
    by_day = await usage_report(context.ledger, name, month, GroupBy.DAY, prices, now)
    months = sorted({month, context.month(None), *await context.ledger.usage_months(name)}, reverse=True)
    return _TEMPLATES.get_template("usage.html").render(
        workspace=workspace, month=month, months=months, total=by_day.total, currency=by_day.currency,
        budgets=await budget_report(context.ledger, workspace, month, now),
        chart=daily_chart(month, by_day.groups),
        pools=(await usage_report(context.ledger, name, month, GroupBy.POOL, prices, now)).groups,
        deployments=(await usage_report(context.ledger, name, month, GroupBy.DEPLOYMENT, prices, now)).groups,
        runs=(await runs_page(context.ledger, workspace, month, RunFilter(), 1, LATEST_RUNS, prices, now)).items,
        ui_url=ui_base_url(workspace), warning_pct=int(WARNING_RATIO * 100), generated_at=now,
    )


def _token_form(workspace: str, month: str, status: int, error: str) -> HTMLResponse:
    html = _TEMPLATES.get_template("token.html").render(workspace=workspace, month=month, error=error)
    return HTMLResponse(html, status_code=status, headers={"WWW-Authenticate": "Bearer"})


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form's first value per field (no multipart: the page sends none)."""
    body = (await request.body())[:_MAX_FORM_BYTES].decode("utf-8", "replace")
    return {key: values[0] for key, values in parse_qs(body).items()}
