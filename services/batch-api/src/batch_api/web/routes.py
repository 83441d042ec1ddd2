"""Dashboard pages (HTML frames filled by the page's ES module), its static files and the one
JSON endpoint it needs beyond `/v1`: who the signed-in key belongs to."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from batch_api.api.deps import CurrentPrincipal
from batch_api.api.problems import Problem
from batch_api.domain.principal import Role
from batch_api.domain.report import AWAITING_DECISION
from contracts.vocabulary import BatchStatus, JobStatus, PriorityName

HERE = Path(__file__).parent
STATIC_PREFIX = "/ui/static"
BATCH_ID = re.compile(r"^b_[0-9a-zA-Z_-]{1,80}$")

templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)


class SessionPublic(BaseModel):
    tenant: str
    user: str
    role: Role
    key_id: str


def _page(request: Request, template: str, title: str, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        template,
        {
            "title": title,
            "static": STATIC_PREFIX,
            "batch_statuses": list(get_args(BatchStatus)),
            # the job list's filters: the statuses, and the failed jobs awaiting a decision
            "job_statuses": [*get_args(JobStatus), AWAITING_DECISION],
            "priorities": list(get_args(PriorityName)),
            **context,
        },
    )


# Pages that need nothing but their template: path → (template, title, nav entry). Keys and
# Audit say "admins only" to others themselves (the API refuses them anyway).
PAGES = {
    "/": ("overview.html", "Overview", "overview"),
    "/signin": ("signin.html", "Sign in", "signin"),
    "/new": ("wizard.html", "New batch", "new"),
    "/history": ("history.html", "History", "history"),
    "/templates": ("templates.html", "Templates", "templates"),
    "/library": ("library.html", "Template library", "library"),
    "/schedules": ("schedules.html", "Schedules", "schedules"),
    "/keys": ("keys.html", "API keys", "keys"),
    "/audit": ("audit.html", "Audit log", "audit"),
}


def _static_page(template: str, title: str, nav: str) -> Any:
    async def page(request: Request) -> HTMLResponse:
        return _page(request, template, title, nav=nav)

    return page


for _path, (_template, _title, _nav) in PAGES.items():
    router.add_api_route(
        _path, _static_page(_template, _title, _nav), response_class=HTMLResponse, methods=["GET"]
    )


@router.get("/batches/{batch_id}", response_class=HTMLResponse)
async def batch_detail(request: Request, batch_id: str) -> HTMLResponse:
    if not BATCH_ID.match(batch_id):
        raise Problem(404, "Not found", f"no batch {batch_id}")
    return _page(request, "batch.html", "Batch", nav="history", batch_id=batch_id)


@router.get("/ui/session", response_model=SessionPublic)
async def session(who: CurrentPrincipal) -> SessionPublic:
    """The signed-in key's tenant, user and role; 401 for an unknown key."""
    return SessionPublic(tenant=who.tenant, user=who.user, role=who.role, key_id=who.key_id)


def not_found_page(request: Request) -> HTMLResponse:
    """What a browser shows for a page that does not exist (the API's 404s stay problems)."""
    response = _page(request, "notfound.html", "Not found", nav="", path=request.url.path)
    response.status_code = 404
    return response


def install_dashboard(app: FastAPI) -> None:
    """Serves the dashboard at `/` and its static files under `/ui/static`; a browser asking
    for a page that does not exist gets a page saying so."""
    app.include_router(router)
    app.state.not_found_page = not_found_page
    app.mount(STATIC_PREFIX, StaticFiles(directory=HERE / "static"), name="ui-static")
