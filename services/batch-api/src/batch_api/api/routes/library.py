"""`/v1/library`: the template library (CRUD, bulk import), consolidations of it (planned
here, run as `templates.consolidate` batches) and decisions on parked conflicts."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from pymongo.asynchronous.database import AsyncDatabase

from batch_api.api.deps import CurrentPrincipal
from batch_api.handlers.batches import BatchService
from batch_api.handlers.library import LibraryService
from batch_api.library_schemas import (
    ConflictDecision,
    ConflictPublic,
    ConsolidationCreated,
    ConsolidationPlan,
    ConsolidationRequest,
    ImportResult,
    TemplateCreate,
    TemplateImport,
    TemplatePage,
    TemplatePublic,
    TemplateUpdate,
)
from jobtypes.templates.library import TemplateLibrary
from servicekit.backups import MongoBackups
from servicekit.store import Document

router = APIRouter(prefix="/v1/library", tags=["template library"])


def library_service(db: AsyncDatabase[Document], batches: BatchService) -> LibraryService:
    return LibraryService(TemplateLibrary(db), MongoBackups(db), batches)


def mount_library(app: FastAPI, library: LibraryService) -> None:
    """Adds these routes to the app, with their service (called once by the composition root)."""
    app.state.library = library
    app.include_router(router)


async def _library(request: Request) -> LibraryService:
    service: LibraryService = request.app.state.library
    return service


Library = Annotated[LibraryService, Depends(_library)]


@router.get("/templates", response_model=TemplatePage)
async def list_templates(
    who: CurrentPrincipal,
    library: Library,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    category: Annotated[str | None, Query(max_length=100)] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[Literal["active", "merged", "archived"] | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> TemplatePage:
    """The tenant's templates by id, filtered; `next_cursor` continues the list."""
    return await library.page(
        who, limit=limit, cursor=cursor, category=category, tag=tag, status=status, q=q
    )


@router.post("/templates", status_code=201, response_model=TemplatePublic)
async def create_template(
    body: TemplateCreate, who: CurrentPrincipal, library: Library, response: Response
) -> TemplatePublic:
    created = await library.create(body, who)
    response.headers["Location"] = f"/v1/library/templates/{created.id}"
    return created


@router.post("/templates/import", status_code=201, response_model=ImportResult)
async def import_templates(
    body: TemplateImport, who: CurrentPrincipal, library: Library
) -> ImportResult:
    """Adds up to 10,000 templates in one request; all or none are validated first."""
    ids = await library.import_many(body.templates, who)
    return ImportResult(imported=len(ids), ids=ids)


@router.get("/templates/{template_id}", response_model=TemplatePublic)
async def get_template(template_id: str, who: CurrentPrincipal, library: Library) -> TemplatePublic:
    return await library.get(template_id, who)


@router.patch("/templates/{template_id}", response_model=TemplatePublic)
async def update_template(
    template_id: str, body: TemplateUpdate, who: CurrentPrincipal, library: Library
) -> TemplatePublic:
    return await library.update(template_id, body, who)


@router.delete("/templates/{template_id}", status_code=204)
async def delete_template(template_id: str, who: CurrentPrincipal, library: Library) -> Response:
    await library.delete(template_id, who)
    return Response(status_code=204)


@router.post("/consolidations/plan", response_model=ConsolidationPlan)
async def plan_consolidation(
    body: ConsolidationRequest, who: CurrentPrincipal, library: Library
) -> ConsolidationPlan:
    """What a consolidation would do: templates in scope, duplicates, conflicts, jobs."""
    _, summary, _ = await library.plan(body, who)
    return summary


@router.post("/consolidations", status_code=201, response_model=ConsolidationCreated)
async def start_consolidation(
    body: ConsolidationRequest,
    who: CurrentPrincipal,
    library: Library,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ConsolidationCreated:
    """Plans the consolidation and submits it as a `templates.consolidate` batch (a repeat
    by its `Idempotency-Key`: 200 with the batch the first request made)."""
    created, made = await library.start(body, who, idempotency_key)
    if not made:
        response.status_code = 200
    response.headers["Location"] = f"/v1/batches/{created.batch_id}"
    return created


@router.get("/conflicts", response_model=list[ConflictPublic])
async def list_conflicts(
    who: CurrentPrincipal,
    library: Library,
    batch_id: Annotated[str, Query(min_length=1, max_length=100)],
    status: Annotated[Literal["awaiting_decision", "decided"] | None, Query()] = None,
) -> list[ConflictPublic]:
    """The conflicts a consolidation batch parked for a person's decision, oldest first."""
    return await library.conflicts(batch_id, who, status)


@router.get("/conflicts/{conflict_id}", response_model=ConflictPublic)
async def get_conflict(conflict_id: str, who: CurrentPrincipal, library: Library) -> ConflictPublic:
    return await library.conflict(conflict_id, who)


@router.post("/conflicts/{conflict_id}/decision", status_code=202, response_model=ConflictPublic)
async def decide_conflict(
    conflict_id: str, body: ConflictDecision, who: CurrentPrincipal, library: Library
) -> ConflictPublic:
    """Decides a parked conflict: `keep` keeps its name, the others are archived; the parked
    job is retried to apply it."""
    return await library.decide(conflict_id, body.keep, who)
