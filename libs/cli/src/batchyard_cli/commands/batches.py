"""Batches: create, upload, submit, status, list, edit, delete."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from enum import StrEnum
from itertools import chain, islice
from pathlib import Path
from typing import Annotated, Any

import typer

from batchyard_cli.app_state import AppState, BatchIdArg, JsonFlag, KeyOpt, state
from batchyard_cli.client import BatchFilter
from batchyard_cli.commands.monitor import run_monitor
from batchyard_cli.creation import (
    DEFAULT_CHUNK,
    DEFAULT_FILES_PER_REQUEST,
    MAX_INLINE_ITEMS,
    BatchOptions,
    UploadInterrupted,
    batch_body,
    command_key,
    expand_files,
    parse_priority,
    repeat_hint,
    upload,
    upload_files,
)
from batchyard_cli.errors import Conflict, InputError
from batchyard_cli.inputs import count_items, load_spec, parse_item, read_items
from batchyard_cli.moments import parse_moment
from batchyard_cli.render import batch_view, batches_table
from batchyard_cli.resources import Batch
from batchyard_cli.sharing import ShareOpt, VisibilityOpt

PANEL = "Batches"
FILES_JOB_TYPE = "files.extract_metadata"
UNSUBMITTED = ("draft", "uploading")

SpecOpt = Annotated[
    Path | None,
    typer.Option(
        "--spec", "-f", help="A batch spec (JSON or YAML): the fields of POST /v1/batches."
    ),
]
NameOpt = Annotated[str | None, typer.Option("--name", "-n", help="The batch's name.")]
JobTypeOpt = Annotated[
    str | None, typer.Option("--job-type", "-t", help="The job type (see `batchyard job-types`).")
]
DescriptionOpt = Annotated[str | None, typer.Option(help="A longer description.")]
PriorityOpt = Annotated[
    str | None, typer.Option("--priority", "-p", help="low, medium, high, critical or 1-10.")
]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeat for several).")]
ChunkOpt = Annotated[int, typer.Option(min=1, max=10_000, help="Items per upload request.")]
WatchOpt = Annotated[
    bool, typer.Option("--watch", "-w", help="Then monitor the batch until it finishes.")
]
DeadlineOpt = Annotated[
    str | None,
    typer.Option(
        help="When the batch should be done: an ISO date-time (local time unless it has an "
        "offset) or a span from now (90m, 4h, 2d). Its priority rises as it nears."
    ),
]


class Missed(StrEnum):
    notify = "notify"
    continue_ = "continue"
    cancel = "cancel"


def create(
    ctx: typer.Context,
    spec: SpecOpt = None,
    name: NameOpt = None,
    job_type: JobTypeOpt = None,
    description: DescriptionOpt = None,
    priority: PriorityOpt = None,
    tag: TagOpt = None,
    item: Annotated[
        list[str] | None,
        typer.Option("--item", help="One item as a JSON object (repeat for several)."),
    ] = None,
    items: Annotated[
        list[str] | None,
        typer.Option(
            "--items",
            "-i",
            help="An items file: JSON lines, a JSON array or a YAML list; - for stdin.",
        ),
    ] = None,
    max_concurrent: Annotated[
        int | None, typer.Option(min=1, help="Jobs of this batch running at once.")
    ] = None,
    sequential: Annotated[
        bool | None,
        typer.Option(
            "--sequential/--parallel",
            show_default=False,
            help="Sequential: one job at a time, in item order (a job's retries before the "
            "next job); with --stop-on-error the jobs after a failed one are skipped.",
        ),
    ] = None,
    max_attempts: Annotated[int | None, typer.Option(min=1, help="Attempts per job.")] = None,
    job_timeout: Annotated[
        float | None, typer.Option(min=0.001, help="Seconds before a job attempt times out.")
    ] = None,
    stop_on_error: Annotated[
        bool | None, typer.Option("--stop-on-error/--no-stop-on-error", show_default=False)
    ] = None,
    failure_threshold: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="Share of failed jobs (0-1) that fails the batch."),
    ] = None,
    rollback_on_failure: Annotated[
        bool | None,
        typer.Option("--rollback-on-failure/--no-rollback-on-failure", show_default=False),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="KEY=VALUE into config.params (repeat for several)."),
    ] = None,
    visibility: VisibilityOpt = None,
    share: ShareOpt = None,
    notify: Annotated[
        list[str] | None,
        typer.Option(
            "--notify",
            help="A webhook URL told when the batch ends or a job fails (repeat for several).",
        ),
    ] = None,
    notify_start: Annotated[
        bool, typer.Option("--notify-start", help="Also tell the webhooks when it starts.")
    ] = False,
    notify_progress: Annotated[
        int | None,
        typer.Option(min=1, max=99, help="Also tell them every N percent of progress."),
    ] = None,
    deadline: DeadlineOpt = None,
    on_deadline_missed: Annotated[
        Missed | None,
        typer.Option(
            help="If the deadline passes with jobs left: notify (keep going, tell the "
            "webhooks; the default), continue (keep going quietly) or cancel."
        ),
    ] = None,
    draft: Annotated[
        bool, typer.Option("--draft", help="Leave the batch in draft; submit it later.")
    ] = False,
    chunk_size: ChunkOpt = DEFAULT_CHUNK,
    idempotency_key: KeyOpt = None,
    watch: WatchOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a batch from flags, a spec file, or both (flags win).

    Items come from the spec, --item and --items files. Up to 10,000 items go in one request
    (the batch exists with all of them or not at all); more, or --draft, are uploaded in
    chunks into a draft batch that is then submitted (unless --draft)."""
    app = state(ctx)
    options = BatchOptions(
        name=name,
        job_type=job_type,
        description=description,
        priority=priority,
        tags=tag or (),
        max_concurrent_jobs=max_concurrent,
        execution=None if sequential is None else ("sequential" if sequential else "parallel"),
        max_attempts=max_attempts,
        timeout_s=job_timeout,
        stop_on_error=stop_on_error,
        failure_threshold=failure_threshold,
        rollback_on_failure=rollback_on_failure,
        params=param or (),
        items=[parse_item(text, f"--item {n}") for n, text in enumerate(item or [], 1)],
        visibility=visibility.value if visibility else None,
        shared_with=share or (),
        notify=notify or (),
        notify_start=notify_start,
        notify_progress=notify_progress,
        deadline=parse_moment(deadline, option="--deadline", ahead=True) if deadline else None,
        on_deadline_missed=on_deadline_missed.value if on_deadline_missed else None,
    )
    body = batch_body(load_spec(spec) if spec else {}, options)
    files = items or []
    inline = body.pop("items", None) or []
    every_item = chain(inline, *(read_items(f) for f in files))
    head = list(islice(every_item, MAX_INLINE_ITEMS + 1))
    if not head and not draft:
        raise InputError("no items: give --item, --items FILE or a spec with items (or --draft)")
    key = command_key(idempotency_key)
    if len(head) <= MAX_INLINE_ITEMS and not draft:
        with repeat_hint(app.output, key):
            batch, verb = app.client().create_batch({**body, "items": head}, key), "Created"
    else:
        total = _total(files, inline=len(inline))
        batch, verb = _create_by_upload(
            app, body, [iter(head), every_item], total, chunk_size, key=key, submit=not draft
        )
    _created(app, batch, as_json, watch, verb)


def upload_cmd(
    ctx: typer.Context,
    files: Annotated[
        list[str],
        typer.Argument(
            help="Items files: JSON lines, a JSON array or a YAML list; - for stdin. With "
            "--files: files or directories whose files are uploaded as data."
        ),
    ],
    as_files: Annotated[
        bool,
        typer.Option(
            "--files",
            help="Upload the files themselves (directories: every file in them, recursively), "
            "one item each; a new batch is files.extract_metadata.",
        ),
    ] = False,
    files_per_request: Annotated[
        int,
        typer.Option(min=1, max=1000, help="With --files: files per upload request."),
    ] = DEFAULT_FILES_PER_REQUEST,
    batch_id: Annotated[
        str | None,
        typer.Option("--batch", "-b", help="Add to this draft or uploading batch."),
    ] = None,
    spec: SpecOpt = None,
    name: NameOpt = None,
    job_type: JobTypeOpt = None,
    priority: PriorityOpt = None,
    tag: TagOpt = None,
    chunk_size: ChunkOpt = DEFAULT_CHUNK,
    submit: Annotated[
        bool | None,
        typer.Option(
            "--submit/--no-submit",
            help="Submit after the upload [default: submit a new batch, not an existing one].",
            show_default=False,
        ),
    ] = None,
    idempotency_key: KeyOpt = None,
    watch: WatchOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Upload items in chunks, with a progress bar, into a new batch or an existing draft;
    with --files, upload files (stored by the API, one item each) in requests of
    --files-per-request files."""
    app = state(ctx)
    key = command_key(idempotency_key)
    if as_files:
        options = BatchOptions(name=name, job_type=job_type, priority=priority, tags=tag or ())
        _upload_files(
            app,
            files,
            batch_id,
            spec,
            options,
            files_per_request,
            submit,
            key=key,
            watch=watch,
            as_json=as_json,
        )
        return
    if batch_id is None:
        default_name = Path(files[0]).stem if files[0] != "-" else None
        options = BatchOptions(
            name=name or default_name, job_type=job_type, priority=priority, tags=tag or ()
        )
        body = batch_body(load_spec(spec) if spec else {}, options)
        inline = body.get("items") or []
        sources = [iter(inline), *(read_items(f) for f in files)]
        total = _total(files, inline=len(inline))
        batch, verb = _create_by_upload(
            app, body, sources, total, chunk_size, key=key, submit=submit is not False
        )
        _created(app, batch, as_json, watch, verb)
        return
    if spec or name or job_type or priority or tag:
        raise InputError("--batch adds items to an existing batch: drop the batch fields")
    client = app.client()
    sources = [read_items(f) for f in files]
    added = _upload(app, batch_id, sources, _total(files), chunk_size, key)
    batch = _submit(app, batch_id, key) if submit else client.get_batch(batch_id)
    if not as_json:
        app.output.say(f"Added {added} items to {batch_id}.")
    _created(app, batch, as_json, watch, verb="Submitted" if submit else None)


def _upload_files(
    app: AppState,
    arguments: Sequence[str],
    batch_id: str | None,
    spec: Path | None,
    options: BatchOptions,
    per_request: int,
    submit: bool | None,
    *,
    key: str,
    watch: bool,
    as_json: bool,
) -> None:
    """`upload --files`: into a new draft (a `files.extract_metadata` batch unless a job type
    is given; submitted unless --no-submit) or into `batch_id` (submitted with --submit)."""
    paths = expand_files(arguments)
    client = app.client()
    new = batch_id is None
    if batch_id is None:
        options = replace(
            options,
            name=options.name or Path(arguments[0]).resolve().name or "files",
            job_type=options.job_type or FILES_JOB_TYPE,
        )
        body = batch_body(load_spec(spec) if spec else {}, options)
        if body.get("items"):
            raise InputError("--files makes the items from the files: drop the spec's items")
        draft = _draft(app, body, key)
        batch_id = draft["id"]
        if draft["status"] not in UNSUBMITTED:
            app.output.note(f"{batch_id} was made and submitted by an earlier run with this key")
            _created(app, draft, as_json, watch, verb="Found")
            return
        app.output.note(f"draft {batch_id}; uploading {len(paths)} files")
    elif spec or options.name or options.job_type or options.priority or options.tags:
        raise InputError("--batch adds files to an existing batch: drop the batch fields")
    try:
        added = upload_files(
            client, batch_id, paths, key=key, per_request=per_request, console=app.output.stderr
        )
    except UploadInterrupted as stopped:
        app.output.note(
            f"upload stopped: the first {stopped.added} files reached {batch_id}, the rest did "
            f"not; run the same command with --idempotency-key {key} to send the rest (what "
            "arrived is not added twice)"
        )
        raise stopped.cause from None
    submitting = submit if submit is not None else new
    batch = _submit(app, batch_id, key) if submitting else client.get_batch(batch_id)
    if not as_json:
        app.output.say(f"Uploaded {added} files to {batch_id}.")
    _created(app, batch, as_json, watch, verb="Submitted" if submitting else None)


def _create_by_upload(
    app: AppState,
    body: dict[str, Any],
    sources: list[Iterator[dict[str, Any]]],
    total: int | None,
    chunk_size: int,
    *,
    key: str,
    submit: bool,
) -> tuple[Batch, str]:
    """A draft made (or found, by `key`) and filled chunk by chunk, then submitted if
    `submit`; with the verb that says so. A batch this key already made and submitted is
    returned as it is."""
    draft = _draft(app, {k: v for k, v in body.items() if k != "items"}, key)
    if draft["status"] not in UNSUBMITTED:
        app.output.note(f"{draft['id']} was made and submitted by an earlier run with this key")
        return draft, "Found"
    app.output.note(f"draft {draft['id']}; uploading items")
    _upload(app, draft["id"], sources, total, chunk_size, key)
    batch = _submit(app, draft["id"], key) if submit else app.client().get_batch(draft["id"])
    return batch, "Created"


def _draft(app: AppState, body: dict[str, Any], key: str) -> Batch:
    with repeat_hint(app.output, key):
        return app.client().create_batch({**body, "draft": True}, key)


def _submit(app: AppState, batch_id: str, key: str) -> Batch:
    """Submits the batch; one a lost answer left submitted already is returned as it is.
    If it fails, says the key that runs the command again (the upload is not repeated)."""
    client = app.client()
    try:
        with repeat_hint(app.output, key):
            return client.submit_batch(batch_id)
    except Conflict:
        batch = client.get_batch(batch_id)
        if batch["status"] in UNSUBMITTED:
            raise
        return batch


def _total(files: Sequence[str], inline: int = 0) -> int | None:
    """How many items the files (and `inline` more) hold; None when stdin is among them."""
    counts = [count_items(f) for f in files]
    return None if None in counts else inline + sum(c or 0 for c in counts)


def _upload(
    app: AppState,
    batch_id: str,
    sources: list[Iterator[dict[str, Any]]],
    total: int | None,
    chunk_size: int,
    key: str,
) -> int:
    try:
        return upload(
            app.client(),
            batch_id,
            sources,
            total=total,
            key=key,
            chunk_size=chunk_size,
            console=app.output.stderr,
        )
    except UploadInterrupted as stopped:
        app.output.note(
            f"upload stopped: {stopped.added} items of this upload reached {batch_id}; the "
            f"failing chunk starts at item {stopped.added} (0-based, so its item k is item "
            f"{stopped.added}+k of the upload); run the same command with --idempotency-key "
            f"{key} to send the rest (what arrived is not added twice)"
        )
        raise stopped.cause from None


def _created(
    app: AppState, batch: Batch, as_json: bool, watch: bool, verb: str | None = "Created"
) -> None:
    if as_json:
        app.output.json(batch)
    elif verb:
        app.output.say(
            f"{verb} batch {batch['id']} {batch['name']!r}: {batch['status']}, "
            f"{batch['progress']['total']} jobs",
            style="bold",
        )
    if watch:
        raise typer.Exit(int(run_monitor(app, [batch["id"]], as_json=as_json)))
    if not as_json and batch["status"] not in UNSUBMITTED:
        app.output.note(f"watch it: batchyard monitor {batch['id']}")


def submit(
    ctx: typer.Context, batch_id: BatchIdArg, watch: WatchOpt = False, as_json: JsonFlag = False
) -> None:
    """Submit a draft or uploaded batch: its jobs are queued."""
    app = state(ctx)
    _created(app, app.client().submit_batch(batch_id), as_json, watch, verb="Submitted")


def status(ctx: typer.Context, batch_id: BatchIdArg, as_json: JsonFlag = False) -> None:
    """A batch's status and progress: counts per job state, percent, throughput, ETA."""
    app = state(ctx)
    batch = app.client().get_batch(batch_id)
    if as_json:
        app.output.json(batch)
    else:
        app.output.show(batch_view(batch))


def list_cmd(
    ctx: typer.Context,
    status_: Annotated[str | None, typer.Option("--status", "-s", help="Only this status.")] = None,
    priority: Annotated[str | None, typer.Option(help="Only this priority.")] = None,
    job_type: Annotated[str | None, typer.Option("--job-type", "-t")] = None,
    tag: Annotated[str | None, typer.Option(help="Only batches with this tag.")] = None,
    owner: Annotated[str | None, typer.Option(help="Only this owner's batches.")] = None,
    created_after: Annotated[
        str | None, typer.Option("--since", "--created-after", help="ISO date or time.")
    ] = None,
    created_before: Annotated[
        str | None, typer.Option("--until", "--created-before", help="ISO date or time.")
    ] = None,
    query: Annotated[
        str | None, typer.Option("--query", "-q", help="Text to find in names/descriptions.")
    ] = None,
    template: Annotated[
        str | None, typer.Option("--template", help="Only batches made from this template.")
    ] = None,
    schedule: Annotated[
        str | None, typer.Option("--schedule", help="Only batches this schedule's runs made.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="Continue after an earlier page.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Batches, newest first, with filters. Pages of up to 500 are followed up to --limit."""
    app = state(ctx)
    if priority is not None:
        parse_priority(priority)
    filters = BatchFilter(
        status=status_,
        priority=priority,
        job_type=job_type,
        tag=tag,
        owner=owner,
        created_after=created_after,
        created_before=created_before,
        q=query,
        template_id=template,
        schedule_id=schedule,
    )
    batches, next_cursor = app.client().iter_batches(filters, limit, cursor)
    if as_json:
        app.output.json({"items": batches, "next_cursor": next_cursor})
    else:
        app.output.show(batches_table(batches, next_cursor, app.output.stdout.width))


def edit(
    ctx: typer.Context,
    batch_id: BatchIdArg,
    name: NameOpt = None,
    description: DescriptionOpt = None,
    priority: PriorityOpt = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Replace the tags (repeat for several).")
    ] = None,
    deadline: DeadlineOpt = None,
    visibility: VisibilityOpt = None,
    share: Annotated[
        list[str] | None,
        typer.Option("--share", help="Replace who it is shared with (repeat for several)."),
    ] = None,
    max_concurrent: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=10_000,
            help="Jobs of it running at once, also while it runs (lowering it stops no "
            "running job).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a batch's name, description, priority, tags, deadline, who sees it, or how many
    of its jobs run at once."""
    app = state(ctx)
    changes: dict[str, Any] = {
        k: v
        for k, v in {
            "name": name,
            "description": description,
            "deadline": parse_moment(deadline, option="--deadline", ahead=True)
            if deadline
            else None,
            "visibility": visibility.value if visibility else None,
            "shared_with": share,
            "max_concurrent_jobs": max_concurrent,
        }.items()
        if v is not None
    }
    if priority is not None:
        changes["priority"] = parse_priority(priority)
    if tag is not None:
        changes["tags"] = tag
    if not changes:
        raise InputError("nothing to change: give --name, --description, --priority, --tag ...")
    batch = app.client().update_batch(batch_id, changes)
    if as_json:
        app.output.json(batch)
    else:
        app.output.say(f"Updated {batch['id']}: {', '.join(changes)}.")


def delete(ctx: typer.Context, batch_id: BatchIdArg) -> None:
    """Delete a finished batch (completed, failed, cancelled, rolled back, archived)."""
    app = state(ctx)
    app.client().delete_batch(batch_id)
    app.output.say(f"Deleted {batch_id}.")


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel=PANEL)(create)
    app.command("upload", rich_help_panel=PANEL)(upload_cmd)
    app.command(rich_help_panel=PANEL)(submit)
    app.command(rich_help_panel=PANEL)(status)
    app.command("list", rich_help_panel=PANEL)(list_cmd)
    app.command(rich_help_panel=PANEL)(edit)
    app.command(rich_help_panel=PANEL)(delete)
