"""Parsing an items upload: `application/x-ndjson` (one JSON object per line), JSON
`{"items": [...]}`, or `multipart/form-data` files (`read_files`). Bad input is a problem
naming the line or field; nothing is stored."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from batch_api.api.problems import Problem
from batch_api.schemas import MAX_INLINE_ITEMS, ItemsUpload

NDJSON = ("application/x-ndjson", "application/ndjson", "application/jsonl")


def parse_items(content_type: str, body: bytes) -> list[dict[str, Any]]:
    """The items of an upload body; 400 for malformed JSON, 422 for anything else wrong,
    including more than 10,000 items."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in NDJSON:
        return _ndjson(body)
    if media not in ("application/json", ""):
        raise Problem(
            415,
            "Unsupported media type",
            "send application/x-ndjson (one JSON object per line), application/json or "
            "multipart/form-data (files)",
            kind="unsupported-media-type",
        )
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "Malformed JSON", f"the request body is not valid JSON: {exc}") from exc
    try:
        return ItemsUpload.model_validate(payload).items
    except ValidationError as exc:
        errors = [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()[:20]
        ]
        first = errors[0]
        detail = f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
        raise Problem(
            422, "Invalid request", detail, kind="invalid-request", errors=errors
        ) from exc


def _ndjson(body: bytes) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise Problem(
                400, "Malformed JSON", f"line {number} is not valid JSON: {exc}", line=number
            ) from exc
        if not isinstance(item, dict):
            raise Problem(
                422,
                "Invalid items",
                f"line {number} is not a JSON object",
                kind="invalid-items",
                line=number,
            )
        items.append(item)
        if len(items) > MAX_INLINE_ITEMS:
            raise Problem(
                422,
                "Too many items",
                f"at most {MAX_INLINE_ITEMS} items per upload; send more requests",
                kind="too-many-items",
            )
    if not items:
        raise Problem(422, "Invalid items", "the upload holds no items", kind="invalid-items")
    return items


def is_multipart(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "multipart/form-data"


async def read_files(request: Request, max_files: int) -> tuple[FormData, list[UploadFile]]:
    """The file parts of a `multipart/form-data` body (Starlette spools each file over 1 MB
    to a temporary file while the request is handled; the caller closes the form). A text
    field is a 422 (files only); more than `max_files` files a 413."""
    try:
        form = await request.form(max_files=max_files, max_fields=max_files)
    except HTTPException as exc:
        if exc.status_code != 400:
            raise  # the body cap's 413 as it is
        if "too many files" in str(exc.detail).lower():
            raise Problem(
                413,
                "Payload too large",
                f"more than {max_files} files in one request; send more requests",
                kind="payload-too-large",
                max_files=max_files,
            ) from exc
        raise Problem(400, "Malformed multipart body", str(exc.detail)) from exc
    files: list[UploadFile] = []
    for name, value in form.multi_items():
        if isinstance(value, str):
            await form.close()
            raise Problem(
                422,
                "Invalid items",
                f"form field {name!r} is not a file: send only file parts",
                kind="invalid-items",
            )
        files.append(value)
    return form, files
