"""Files uploaded into a batch (multipart, in chunks) and `files.extract_metadata` over them,
on the real stack: hashes, sizes and text statistics of every file; refused uploads keep what
was accepted; the batch's deletion deletes its files; the CLI's `upload --files`."""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_support import ANSI, Cli, cli_env, no_traceback, run_under_pty, wait_status
from jobs_support import wait_for_status
from pymongo import AsyncMongoClient
from readmodels import settled_job_views
from stack_support import Stack
from tenancy import other_tenant_admin

pytestmark = pytest.mark.e2e

FILES_TYPE = "files.extract_metadata"
MAX_FILE_BYTES = 16 * 1024 * 1024  # the API's default per-file cap
WORDS = ["alpha", "Grüße", "naïve", "zebra", "kilo", "€uro", "tab\tbed", "x"]


def text_of(rng: random.Random, lines: int) -> str:
    rows = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 9))) for _ in range(lines)]
    return "\n".join(rows) + ("\n" if rng.random() < 0.5 else "")


def expected_text(text: str) -> tuple[int, int]:
    lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    return lines, len(text.split())


def make_files(n: int) -> list[tuple[str, bytes, dict[str, Any]]]:
    """(name, bytes, what the job must find) of `n` files: UTF-8, ASCII, UTF-16 and latin-1
    text, PNG and random binaries; some larger than one stored chunk (255 KiB), one empty."""
    rng = random.Random(6)
    made: list[tuple[str, bytes, dict[str, Any]]] = []
    for i in range(n):
        kind = i % 6
        if i == 0:
            made.append(("empty.txt", b"", {"text_file": 1, "lines": 0, "words": 0}))
        elif kind == 0:
            text = text_of(rng, rng.randint(1, 40))
            lines, words = expected_text(text)
            want = {"text_file": 1, "encoding": "utf-8", "lines": lines, "words": words}
            made.append((f"notes-{i}.txt", text.encode(), want))
        elif kind == 1:
            text = "\n".join(f"row {r},{rng.randint(0, 99)}" for r in range(rng.randint(1, 30)))
            lines, words = expected_text(text)
            want = {"text_file": 1, "encoding": "ascii", "lines": lines, "words": words}
            want["media_type"] = "text/csv"
            made.append((f"table-{i}.csv", text.encode(), want))
        elif kind == 2:
            text = text_of(rng, rng.randint(1, 20))
            lines, words = expected_text(text)
            data = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
            want = {"text_file": 1, "encoding": "utf-16-le", "lines": lines, "words": words}
            made.append((f"wide-{i}.txt", data, want))
        elif kind == 3:
            text = "café crème brûlée\n" * rng.randint(1, 5)
            lines, words = expected_text(text)
            want = {"text_file": 1, "encoding": "latin-1", "lines": lines, "words": words}
            made.append((f"menu-{i}.txt", text.encode("latin-1"), want))
        elif kind == 4:
            data = b"\x89PNG\r\n\x1a\n" + os.urandom(rng.randint(100, 5000))
            made.append((f"image-{i}.dat", data, {"text_file": 0, "media_type": "image/png"}))
        else:
            size = 600 * 1024 if i % 50 == 5 else rng.randint(1, 20_000)
            want = {"text_file": 0, "media_type": "application/octet-stream"}
            made.append((f"blob-{i}.bin", bytes([0]) + os.urandom(size - 1), want))
    return made


BOUNDARY = "batchyard-test-boundary"
MULTIPART = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}


async def streamed_parts() -> AsyncIterator[bytes]:
    """A multipart body of small files, sent chunked (no Content-Length), past the 32 MiB
    body cap."""
    part = (
        (
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=files; filename=p.bin\r\n"
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + b"x" * 1_000_000
        + b"\r\n"
    )
    for _ in range(34):
        yield part
    yield f"--{BOUNDARY}--\r\n".encode()


def parts(files: list[tuple[str, bytes, dict[str, Any]]]) -> list[tuple[str, Any]]:
    return [("files", (name, data, "application/octet-stream")) for name, data, _ in files]


async def files_draft(api: httpx.AsyncClient, name: str = "files") -> str:
    created = await api.post(
        "/v1/batches", json={"name": name, "job_type": FILES_TYPE, "draft": True}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = dict(response.json())
    assert body["type"] == f"/problems/{kind}", body
    return body


async def stored_files(stack: Stack, batch_id: str) -> list[dict[str, Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_url)
    try:
        query = {"_id": {"$gt": f"{batch_id}.", "$lt": f"{batch_id}/"}}
        return [d async for d in client[stack.database]["files"].find(query)]
    finally:
        await client.close()


async def chunk_collections(stack: Stack, batch_id: str) -> list[str]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_url)
    try:
        names = await client[stack.database].list_collection_names()
        return [n for n in names if n.startswith(f"file_chunks.{batch_id}.")]
    finally:
        await client.close()


async def test_200_files_in_4_chunks_produce_correct_hashes(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    files = make_files(200)
    batch_id = await files_draft(api, "two hundred files")
    url = f"/v1/batches/{batch_id}/items"
    sent: list[dict[str, Any]] = []
    for n in range(4):
        chunk = files[n * 50 : (n + 1) * 50]
        response = await api.post(url, files=parts(chunk), timeout=120)
        assert response.status_code == 202, response.text
        body = response.json()
        assert (body["added"], body["total"]) == (50, 50 * (n + 1))
        assert [f["filename"] for f in body["files"]] == [name for name, _, _ in chunk]
        assert [f["size"] for f in body["files"]] == [len(data) for _, data, _ in chunk]
        sent += body["files"]
        assert (await api.get(f"/v1/batches/{batch_id}")).json()["status"] == "uploading"
    listed = (await api.get(url, params={"limit": 3})).json()
    assert [i["item"]["file_id"] for i in listed["items"]] == [f["file_id"] for f in sent[:3]]

    submitted = await api.post(f"/v1/batches/{batch_id}/submit")
    assert submitted.status_code == 202, submitted.text
    done = await wait_for_status(api, batch_id, {"completed", "completed_with_errors"}, 240)
    assert done["status"] == "completed", done
    views = await settled_job_views(
        stack.mongodb_url,
        stack.database,
        batch_id,
        lambda vs: len(vs) == 200 and all(v["status"] == "completed" for v in vs),
        within_s=120,
    )
    by_index = {v["index"]: v["output"] for v in views}
    assert len(by_index) == 200
    for index, (name, data, want) in enumerate(files):
        output = by_index[index]
        assert output["file_id"] == sent[index]["file_id"]
        assert output["filename"] == name
        assert output["sha256"] == hashlib.sha256(data).hexdigest(), name
        assert output["size_bytes"] == len(data), name
        for key, value in want.items():
            assert output[key] == value, (name, key, output)
        if not want["text_file"]:
            assert output["lines"] is None
            assert output["encoding"] is None

    report = (await api.get(f"/v1/batches/{batch_id}/report")).json()
    assert report["metrics"]["size_bytes"] == sum(len(d) for _, d, _ in files)
    assert report["metrics"]["text_file"] == sum(w["text_file"] for _, _, w in files)
    assert report["metrics"]["lines"] == sum(w.get("lines", 0) for _, _, w in files)

    # deleting the batch deletes its files and their chunks
    assert len(await stored_files(stack, batch_id)) == 200
    # (an empty file has no chunk, so no chunk collection)
    assert len(await chunk_collections(stack, batch_id)) == sum(1 for _, d, _ in files if d)
    deleted = await api.delete(f"/v1/batches/{batch_id}")
    assert deleted.status_code == 204, deleted.text
    assert await stored_files(stack, batch_id) == []
    assert await chunk_collections(stack, batch_id) == []


async def test_refused_uploads_are_problems_and_keep_what_was_accepted(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    batch_id = await files_draft(api, "refusals")
    url = f"/v1/batches/{batch_id}/items"
    key = {"Idempotency-Key": f"files-{uuid.uuid4().hex}"}
    kept = [("files", ("kept.txt", b"kept\n", "text/plain"))]
    first = await api.post(url, files=kept, headers=key)
    assert first.status_code == 202, first.text
    again = await api.post(url, files=kept, headers=key)  # a retry stores nothing again
    assert again.status_code == 202, again.text
    assert again.json() == first.json()
    other_bytes = [("files", ("kept.txt", b"other\n", "text/plain"))]
    problem(await api.post(url, files=other_bytes, headers=key), 409, "idempotency-key-reused")

    # one file over the per-file cap: nothing of the request is stored, not even the small one
    too_big = [
        ("files", ("small.txt", b"small\n", "text/plain")),
        ("files", ("huge.bin", b"\0" * (MAX_FILE_BYTES + 1), "application/octet-stream")),
    ]
    body = problem(await api.post(url, files=too_big, timeout=120), 413, "payload-too-large")
    assert "huge.bin" in body["detail"]
    body = problem(
        await api.post(url, content=streamed_parts(), headers=MULTIPART), 413, "payload-too-large"
    )
    assert str(32 * 1024 * 1024) in body["detail"]  # the API's body cap, counted as it arrives
    with_field = await api.post(
        url, data={"note": "x"}, files=[("files", ("n.txt", b"n", "text/plain"))]
    )
    assert "note" in problem(with_field, 422, "invalid-items")["detail"]
    form = problem(await api.post(url, data={"note": "no file"}), 415, "unsupported-media-type")
    assert "multipart/form-data" in form["detail"]
    assert [d["filename"] for d in await stored_files(stack, batch_id)] == ["kept.txt"]

    # a viewer may not upload
    viewer = (await api.post("/v1/keys", json={"name": "file viewer", "role": "viewer"})).json()
    as_viewer = {"Authorization": f"Bearer {viewer['key']}"}
    files = [("files", ("v.txt", b"v", "text/plain"))]
    problem(await api.post(url, files=files, headers=as_viewer), 403, "forbidden")

    # a batch of another job type refuses file items (its schema does not take them)
    other = await api.post(
        "/v1/batches", json={"name": "o", "job_type": "demo.sleep", "draft": True}
    )
    other_id = other.json()["id"]
    problem(await api.post(f"/v1/batches/{other_id}/items", files=files), 422, "invalid-items")
    assert await stored_files(stack, other_id) == []

    batch = (await api.get(f"/v1/batches/{batch_id}")).json()
    assert batch["progress"]["total"] == 1
    assert (await api.post(f"/v1/batches/{batch_id}/submit")).status_code == 202
    done = await wait_for_status(api, batch_id, {"completed", "completed_with_errors"}, 60)
    assert done["status"] == "completed"

    # once submitted: 409 (a retry of the accepted upload still gets its answer), and the
    # one accepted file was processed
    body = problem(await api.post(url, files=files), 409, "conflict")
    assert body["batch_status"] in ("queued", "running", "completed")
    assert (await api.post(url, files=kept, headers=key)).json() == first.json()
    assert [d["filename"] for d in await stored_files(stack, batch_id)] == ["kept.txt"]
    views = await settled_job_views(
        stack.mongodb_url, stack.database, batch_id, lambda vs: len(vs) == 1 and vs[0]["output"]
    )
    assert views[0]["output"]["sha256"] == hashlib.sha256(b"kept\n").hexdigest()


async def test_a_file_that_is_gone_fails_permanently_naming_it(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    # batch A uploads a file; B names it in a JSON item (same tenant: allowed); another
    # tenant may not name it; A is deleted with its files; B's job then finds no file
    first = await files_draft(api, "original")
    upload = await api.post(
        f"/v1/batches/{first}/items", files=[("files", ("gone.txt", b"bye\n", "text/plain"))]
    )
    file_id = upload.json()["files"][0]["file_id"]
    assert (await api.post(f"/v1/batches/{first}/submit")).status_code == 202
    await wait_for_status(api, first, {"completed"}, 60)
    reuse = {"name": "reuse", "job_type": FILES_TYPE, "draft": True}
    reuse["items"] = [{"file_id": file_id, "filename": "gone.txt"}]
    second = await api.post("/v1/batches", json=reuse)
    assert second.status_code == 201, second.text
    stranger = {"Authorization": f"Bearer {await other_tenant_admin(stack)}"}
    body = problem(
        await api.post("/v1/batches", json=reuse, headers=stranger), 422, "invalid-items"
    )
    assert file_id in body["detail"]

    assert (await api.delete(f"/v1/batches/{first}")).status_code == 204
    batch_id = second.json()["id"]
    assert (await api.post(f"/v1/batches/{batch_id}/submit")).status_code == 202
    await wait_for_status(api, batch_id, {"completed_with_errors", "failed"}, 60)
    views = await settled_job_views(
        stack.mongodb_url,
        stack.database,
        batch_id,
        lambda vs: len(vs) == 1 and vs[0]["status"] == "failed",
    )
    assert views[0]["error_class"] == "FileNotFound"
    assert views[0]["retryable"] is False
    assert file_id in views[0]["error_message"]
    assert "gone.txt" in views[0]["error_message"]


async def test_job_types_list_output_schemas_rollback_and_isolation(api: httpx.AsyncClient) -> None:
    listed = {t["name"]: t for t in (await api.get("/v1/job-types")).json()}
    files = listed[FILES_TYPE]
    assert files["input_schema"]["required"] == ["file_id"]
    assert "sha256" in files["output_schema"]["properties"]
    assert files["supports_rollback"] is False
    assert files["isolation"] == "inline"
    assert listed["templates.consolidate"]["supports_rollback"] is True
    assert listed["demo.allocate"]["isolation"] == "process"
    assert (
        listed["demo.sleep"]["output_schema"] is None
        or "properties" in listed["demo.sleep"]["output_schema"]
    )


def test_cli_uploads_a_directory_of_files_in_chunks(stack: Stack, tmp_path: Path) -> None:
    run = Cli(cli_env(stack, tmp_path))
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    contents = {f"page-{i}.md": f"# page {i}\nsome words here\n".encode() for i in range(7)}
    contents["sub/logo.png"] = b"\x89PNG\r\n\x1a\n" + os.urandom(300)
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    (folder / ".hidden").write_bytes(b"not uploaded")
    result = run("upload", "--files", str(folder), "--files-per-request", "3", "--json")
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    batch = json.loads(result.stdout)
    assert batch["job_type"] == FILES_TYPE
    assert batch["name"] == "docs"
    assert batch["progress"]["total"] == 8
    finished = wait_status(run, batch["id"], {"completed", "completed_with_errors"}, 90)
    assert finished["status"] == "completed"
    rows = json.loads(run("jobs", "list", batch["id"], "--json", "--limit", "20").stdout)["items"]
    by_name = {r["output"]["filename"]: r["output"] for r in rows}
    expected = {Path(name).name: data for name, data in contents.items()}
    assert set(by_name) == set(expected)
    for name, data in expected.items():
        assert by_name[name]["sha256"] == hashlib.sha256(data).hexdigest()
    assert by_name["page-0.md"]["media_type"] == "text/markdown"
    assert by_name["page-0.md"]["lines"] == 2
    assert by_name["logo.png"]["media_type"] == "image/png"

    # under a terminal: a progress bar in bytes, then the batch is submitted
    code, screen = run_under_pty(
        ["upload", "--files", str(folder), "--files-per-request", "2", "--name", "pty"],
        cli_env(stack, tmp_path),
        90,
    )
    plain = ANSI.sub("", screen)
    assert code == 0, plain
    assert "uploading files" in plain
    assert "100%" in plain
    assert "Uploaded 8 files" in plain
    assert "Submitted batch" in plain

    missing = run("upload", "--files", str(tmp_path / "nope"))
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
