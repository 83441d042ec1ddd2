"""Requests that make something carry an Idempotency-Key and are sent again, with that key,
when no answer came; other requests are never repeated. Against httpx's mock transport (the
retry logic only; the server's side of keys is in the e2e tests)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from batchyard_cli.client import REPEAT_WAITS_S, BatchyardClient
from batchyard_cli.creation import chunk_key, command_key, repeat_hint, upload
from batchyard_cli.errors import Conflict, InputError, ServerError, Unreachable
from batchyard_cli.render import Output

pytestmark = pytest.mark.unit

BATCH = {"id": "b_1", "name": "n", "status": "queued", "progress": {"total": 1}}


def problem(status: int, kind: str) -> httpx.Response:
    body = {"type": f"/problems/{kind}", "title": kind, "status": status, "detail": kind}
    return httpx.Response(status, json=body)


class Server:
    """Answers each request with the next of `answers` (a response, or an exception raised
    as the transport's), recording what was sent."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []
        self.slept: list[float] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.bodies.append(request.read())
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self) -> BatchyardClient:
        return BatchyardClient(
            "http://api.test",
            "k",
            transport=httpx.MockTransport(self.handle),
            sleep=self.slept.append,
        )

    def keys(self) -> list[str | None]:
        return [r.headers.get("Idempotency-Key") for r in self.requests]


def lost(request_name: str = "POST") -> httpx.ReadTimeout:
    return httpx.ReadTimeout("no answer", request=httpx.Request(request_name, "http://api.test"))


def test_a_create_whose_answer_was_lost_is_sent_again_with_the_same_key() -> None:
    server = Server(lost(), httpx.Response(201, json=BATCH))
    batch = server.client().create_batch({"name": "n"}, "mine")
    assert batch["id"] == "b_1"
    assert server.keys() == ["mine", "mine"]
    assert server.bodies[0] == server.bodies[1]
    assert server.slept == [REPEAT_WAITS_S[0]]


def test_a_create_without_a_key_gets_a_fresh_one_kept_across_its_repeats() -> None:
    server = Server(lost(), httpx.Response(201, json=BATCH))
    server.client().create_batch({"name": "n"})
    first, again = server.keys()
    assert first is not None
    assert first.startswith("cli-")
    assert again == first
    other = Server(httpx.Response(201, json=BATCH))
    other.client().create_batch({"name": "n"})
    assert other.keys()[0] != first


@pytest.mark.parametrize(
    "answer",
    [problem(503, "unavailable"), problem(502, "bad-gateway"), problem(409, "request-in-progress")],
)
def test_busy_answers_to_a_keyed_request_are_asked_again(answer: httpx.Response) -> None:
    server = Server(answer, httpx.Response(202, json={"batch_id": "b_1", "added": 1, "total": 1}))
    added = server.client().add_items("b_1", [{"x": 1}], "k#0")
    assert added["added"] == 1
    assert server.keys() == ["k#0", "k#0"]


def test_a_conflict_of_another_kind_is_not_asked_again() -> None:
    server = Server(problem(409, "idempotency-key-reused"))
    with pytest.raises(Conflict):
        server.client().create_batch({"name": "n"}, "mine")
    assert len(server.requests) == 1


def test_after_every_wait_the_last_failure_is_reported() -> None:
    server = Server(*[lost()] * (len(REPEAT_WAITS_S) + 1))
    with pytest.raises(Unreachable, match="did not answer in time"):
        server.client().create_batch({"name": "n"}, "mine")
    assert server.slept == list(REPEAT_WAITS_S)
    assert len(server.requests) == len(REPEAT_WAITS_S) + 1
    busy = Server(*[problem(503, "unavailable")] * (len(REPEAT_WAITS_S) + 1))
    with pytest.raises(ServerError):
        busy.client().create_batch({"name": "n"}, "mine")


def test_a_request_without_a_key_is_never_repeated() -> None:
    server = Server(lost("GET"))
    with pytest.raises(Unreachable):
        server.client().get_batch("b_1")
    action = Server(problem(503, "unavailable"))
    with pytest.raises(ServerError):
        action.client().batch_action("b_1", "pause")
    assert len(server.requests) == len(action.requests) == 1
    assert server.slept == action.slept == []


def test_files_are_sent_whole_again_on_a_repeat(tmp_path: Path) -> None:
    path = tmp_path / "scan.txt"
    path.write_bytes(b"the file's bytes")
    server = Server(lost(), httpx.Response(202, json={"batch_id": "b_1", "added": 1, "total": 1}))
    server.client().add_files("b_1", [path], "k#0")
    first, again = (body.count(b"the file's bytes") for body in server.bodies)
    assert first == again == 1  # read from its start again (the boundaries differ)
    assert len(server.bodies[0]) == len(server.bodies[1])


def test_each_chunk_of_an_upload_has_its_own_key_from_the_commands() -> None:
    sent: list[tuple[int, str | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        items = [json.loads(line) for line in request.read().splitlines()]
        sent.append((len(items), request.headers.get("Idempotency-Key")))
        return httpx.Response(202, json={"batch_id": "b_1", "added": len(items), "total": 0})

    client = BatchyardClient("http://api.test", "k", transport=httpx.MockTransport(answer))
    items: Iterator[dict[str, int]] = iter([{"n": n} for n in range(5)])
    added = upload(client, "b_1", [items], total=5, key="run-1", chunk_size=2)
    assert added == 5
    assert sent == [(2, "run-1#0"), (2, "run-1#1"), (1, "run-1#2")]
    assert chunk_key("run-1", 2) == "run-1#2"


@pytest.mark.parametrize("given", ["", "  ", "x" * 193])
def test_a_key_the_api_could_not_take_is_refused_before_anything_is_sent(given: str) -> None:
    with pytest.raises(InputError, match="--idempotency-key takes 1 to 192 characters"):
        command_key(given)


def test_a_command_without_a_key_gets_a_fresh_one() -> None:
    assert command_key(None) != command_key(None)
    assert command_key("nightly-2026-12-07") == "nightly-2026-12-07"


def refused() -> httpx.ConnectError:
    return httpx.ConnectError("refused", request=httpx.Request("POST", "http://api.test"))


@pytest.mark.parametrize(
    ("failures", "hinted"),
    [([refused()] * 5, False), ([lost(), *[refused()] * 4], True), ([lost()] * 5, True)],
)
def test_the_key_is_printed_only_when_the_request_may_have_gone_through(
    failures: list[Exception], hinted: bool
) -> None:
    server = Server(*failures)
    said = io.StringIO()
    output = Output(stderr=Console(file=said, width=300))
    with pytest.raises(Unreachable), repeat_hint(output, "cli-k"):
        server.client().create_batch({"name": "n"}, "cli-k")
    assert ("--idempotency-key cli-k" in said.getvalue()) is hinted
