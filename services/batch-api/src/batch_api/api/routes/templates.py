"""`/v1/templates`: batch templates — create, list (by category, text, owner), read, change,
delete, list categories, and instantiate into a batch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from batch_api.api.deps import CurrentPrincipal
from batch_api.handlers.templates import TemplateService
from batch_api.schemas import BatchPublic
from batch_api.template_schemas import (
    CategoryCount,
    Instantiate,
    TemplateCreate,
    TemplateFromBatch,
    TemplatePage,
    TemplatePublic,
    TemplateUpdate,
)

router = APIRouter(prefix="/v1/templates", tags=["templates"])
MAX_PAGE = 500


async def template_service(request: Request) -> TemplateService:
    service: TemplateService = request.app.state.templates
    return service


Templates = Annotated[TemplateService, Depends(template_service)]


@router.post("", status_code=201, response_model=TemplatePublic)
async def create_template(
    body: TemplateCreate, who: CurrentPrincipal, templates: Templates, response: Response
) -> TemplatePublic:
    """A template owned by the caller; `private` (default) or visible to the whole `tenant`,
    and shared with the users in `shared_with`. Items, if given, are checked against the job
    type's input schema now."""
    created = await templates.create(body, who)
    response.headers["Location"] = f"/v1/templates/{created.id}"
    return created


@router.post("/from-batch", status_code=201, response_model=TemplatePublic)
async def create_template_from_batch(
    body: TemplateFromBatch, who: CurrentPrincipal, templates: Templates, response: Response
) -> TemplatePublic:
    """A template that makes batches like an existing one (its job type, priority, tags,
    configuration and, unless `with_items` is false, its items)."""
    created = await templates.from_batch(body, who)
    response.headers["Location"] = f"/v1/templates/{created.id}"
    return created


@router.get("", response_model=TemplatePage)
async def list_templates(
    who: CurrentPrincipal,
    templates: Templates,
    category: Annotated[str | None, Query(max_length=100)] = None,
    q: Annotated[str | None, Query(max_length=200, description="text in the name")] = None,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> TemplatePage:
    """Templates the caller may see, newest first."""
    return await templates.page(
        who, category=category, q=q, owner=owner, limit=limit, cursor=cursor
    )


@router.get("/categories", response_model=list[CategoryCount])
async def list_categories(who: CurrentPrincipal, templates: Templates) -> list[CategoryCount]:
    """Categories of the templates the caller may see, with how many each holds."""
    return await templates.categories(who)


@router.get("/{template_id}", response_model=TemplatePublic)
async def get_template(
    template_id: str, who: CurrentPrincipal, templates: Templates
) -> TemplatePublic:
    return TemplatePublic.of(await templates.load(template_id, who))


@router.patch("/{template_id}", response_model=TemplatePublic)
async def update_template(
    template_id: str, body: TemplateUpdate, who: CurrentPrincipal, templates: Templates
) -> TemplatePublic:
    """Only the owner or an admin (403 for others who can see it)."""
    return await templates.update(template_id, body, who)


@router.delete("/{template_id}", status_code=204)
async def delete_template(
    template_id: str, who: CurrentPrincipal, templates: Templates
) -> Response:
    """Only the owner or an admin. Batches made from it are not affected."""
    await templates.delete(template_id, who)
    return Response(status_code=204)


@router.post("/{template_id}/instantiate", status_code=201, response_model=BatchPublic)
async def instantiate_template(
    template_id: str,
    body: Instantiate,
    who: CurrentPrincipal,
    templates: Templates,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> BatchPublic:
    """A batch from the template with these overrides, submitted at once (the template's
    items, or `items` here). Honours `Idempotency-Key` like batch creation (200 with the
    earlier batch for a repeat)."""
    batch, created = await templates.instantiate(template_id, body, who, idempotency_key)
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/v1/batches/{batch.id}"
    return batch
