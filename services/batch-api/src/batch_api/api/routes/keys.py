"""`/v1/keys`: an admin creates, lists and revokes the API keys of their tenant."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from batch_api.adapters.keys import ApiKeyStore, LastAdminKey
from batch_api.api.deps import CurrentPrincipal
from batch_api.api.problems import Problem
from batch_api.domain.principal import Principal
from batch_api.domain.ratelimit import Limit
from batch_api.key_schemas import KeyCreate, KeyCreated, KeyList, KeyPublic

router = APIRouter(prefix="/v1/keys", tags=["keys"])


async def admin(who: CurrentPrincipal) -> Principal:
    if not who.may("admin"):
        raise Problem(403, "Forbidden", "this needs a key with the admin role", kind="forbidden")
    return who


async def key_store(request: Request) -> ApiKeyStore:
    keys: ApiKeyStore = request.app.state.keys
    return keys


@router.post("", status_code=201, response_model=KeyCreated)
async def create_key(
    body: KeyCreate,
    response: Response,
    who: Principal = Depends(admin),
    keys: ApiKeyStore = Depends(key_store),
) -> KeyCreated:
    """A new key of the caller's tenant with `role`; the key is in this response only."""
    asked = body.rate_limit
    limit = None if asked is None else Limit(per_s=asked.per_s, burst=asked.burst)
    key, doc = await keys.create(
        tenant=who.tenant, user=body.user or body.name, role=body.role, name=body.name, limit=limit
    )
    response.headers["Location"] = f"/v1/keys/{doc['key_id']}"
    return KeyCreated(key=key, **KeyPublic.of(doc).model_dump())


@router.get("", response_model=KeyList)
async def list_keys(
    who: Principal = Depends(admin), keys: ApiKeyStore = Depends(key_store)
) -> KeyList:
    """The tenant's keys, revoked ones included, oldest first; never the secrets."""
    return KeyList(items=[KeyPublic.of(d) for d in await keys.list(who.tenant)])


@router.delete("/{key_id}", status_code=204)
async def revoke_key(
    key_id: str, who: Principal = Depends(admin), keys: ApiKeyStore = Depends(key_store)
) -> Response:
    """Revokes a key: requests with it get 401 from then on. Repeating it is harmless. The
    tenant's last admin key is kept (409): make another admin key first."""
    try:
        doc = await keys.revoke(who.tenant, key_id)
    except LastAdminKey:
        raise Problem(
            409,
            "Conflict",
            f"{key_id} is the tenant's only admin key: revoking it would leave nobody able to "
            "make or revoke keys; create another admin key first",
            kind="last-admin-key",
        ) from None
    if doc is None:
        raise Problem(404, "Not found", f"no key {key_id}")
    return Response(status_code=204)
