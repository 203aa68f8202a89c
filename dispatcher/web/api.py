"""The usage API (JSON, and CSV for finance), under /api/v1; its OpenAPI document is /api/openapi.json.

Every route needs a bearer token (``api.tokens``): read tokens read their workspaces, admin
tokens may also set a month's budget.
"""

from __future__ import annotations

import logging
from typing import Annotated, Optional

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Security
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dispatcher.config.usage import ApiRole
from dispatcher.ledger.usage import GroupBy, RunFilter
from dispatcher.usage.costs import ui_base_url
from dispatcher.usage.models import BudgetChange, BudgetReport, RunPage, UsageReport, WorkspaceSummary
from dispatcher.usage.report import budget_report, csv_lines, runs_page, usage_report
from dispatcher.web.context import DAY_PATTERN, MONTH_PATTERN, UsageContext

log = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False, description="A token from the configuration's api.tokens.")
Credentials = Annotated[Optional[HTTPAuthorizationCredentials], Security(_bearer)]
WorkspaceName = Annotated[str, Path(min_length=1, max_length=255, description="A configured workspace.")]
Month = Annotated[Optional[str], Query(pattern=MONTH_PATTERN, description="YYYY-MM (UTC); default: this month.")]
Name = Annotated[Optional[str], Query(min_length=1, max_length=255)]
Grouping = Annotated[GroupBy, Query(description="pool, deployment, flow, provider or day.")]
_ERRORS = {
    401: {"description": "No bearer token, or one that is not configured."},
    403: {"description": "The token may not read this workspace (or, for changes, is not an admin token)."},
    404: {"description": "No such workspace (told only to tokens that may read every workspace)."},
    422: {"description": "A parameter is malformed."},
}


def usage_router(context: UsageContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["usage"], responses=_ERRORS)

    def presented(credentials: HTTPAuthorizationCredentials | None) -> str | None:
        return credentials.credentials if credentials else None

    def reader(role: ApiRole):  # noqa: ANN202 - a FastAPI dependency factory
        def check(workspace: WorkspaceName, credentials: Credentials) -> str:
            token = context.tokens.authorise(presented(credentials), workspace, role)
            context.workspace(workspace)
            return token.name

        return check

    # Defaults, not Annotated aliases: with postponed annotations FastAPI resolves those in the module only.
    read, admin = Depends(reader(ApiRole.READ)), Depends(reader(ApiRole.ADMIN))

    @router.get("/workspaces", response_model=list[WorkspaceSummary], summary="Workspaces this token may read")
    async def workspaces(credentials: Credentials) -> list[WorkspaceSummary]:
        names = context.tokens.readable(presented(credentials), [w.name for w in context.config.workspaces])
        return [WorkspaceSummary(name=w.name, ui_url=ui_base_url(w), pools=[p.name for p in w.pools],
                                 monthly_compute_minutes=w.monthly_compute_minutes)
                for w in context.config.workspaces if w.name in names]

    @router.get("/workspaces/{workspace}/usage", response_model=UsageReport, summary="A month's usage, grouped")
    async def usage(workspace: WorkspaceName, month: Month = None,
                    group_by: Grouping = GroupBy.POOL, _: str = read) -> UsageReport:
        return await usage_report(context.ledger, context.workspace(workspace).name, context.month(month), group_by,
                                  context.config.prices, context.clock())

    @router.get("/workspaces/{workspace}/runs", response_model=RunPage, summary="The attempts behind a figure")
    async def runs(workspace: WorkspaceName, month: Month = None, pool: Name = None,
                   deployment: Name = None, flow: Name = None, provider: Name = None,
                   day: Annotated[Optional[str], Query(pattern=DAY_PATTERN)] = None,
                   page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
                   page_size: Annotated[int, Query(ge=1, le=500)] = 50, _: str = read) -> RunPage:
        where = RunFilter(pool=pool, deployment=deployment, flow=flow, provider=provider, day=day)
        return await runs_page(context.ledger, context.workspace(workspace), context.month(month), where, page,
                               page_size, context.config.prices, context.clock())

    @router.get("/workspaces/{workspace}/budget", response_model=BudgetReport, summary="Budgets and their status")
    async def budget(workspace: WorkspaceName, month: Month = None, _: str = read) -> BudgetReport:
        return await budget_report(context.ledger, context.workspace(workspace), context.month(month), context.clock())

    @router.put("/workspaces/{workspace}/budget/{month}", response_model=BudgetReport,
                summary="Set a month's budget (admin tokens)")
    async def set_budget(workspace: WorkspaceName, change: BudgetChange,
                         month: Annotated[str, Path(pattern=MONTH_PATTERN)], token_name: str = admin) -> BudgetReport:
        config = context.workspace(workspace)
        if change.pool is not None and change.pool not in {p.name for p in config.pools}:
            raise HTTPException(422, "pool is not a pool of this workspace")
        await context.ledger.set_budget(workspace, change.pool, month, change.monthly_compute_minutes, token_name,
                                        context.clock())
        log.info("workspace %s: budget of %s for %s set to %d minutes by token %r", workspace,
                 f"pool {change.pool}" if change.pool else "the workspace", month, change.monthly_compute_minutes,
                 token_name)
        return await budget_report(context.ledger, config, month, context.clock())

    @router.get("/workspaces/{workspace}/usage.csv", summary="A month's metered attempts as CSV",
                response_class=StreamingResponse,
                responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}})
    async def usage_csv(workspace: WorkspaceName, month: Month = None, _: str = read) -> StreamingResponse:
        return csv_response(context, workspace, context.month(month))

    return router


def csv_response(context: UsageContext, workspace: str, month: str) -> StreamingResponse:
    lines = csv_lines(context.ledger, context.workspace(workspace), month, context.config.prices, context.clock())
    filename = f"usage-{workspace}-{month}.csv".replace('"', "")
    return StreamingResponse(lines, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})
