"""The API's checks of `config.depends_on`: unknown and foreign batches, self, cycles (only
through unsubmitted batches), the walk's bound, and submission order."""

from __future__ import annotations

import pytest

from batch_api.domain import dependencies
from batch_api.domain.dependencies import (
    DependencyProblem,
    Node,
    check_dependencies,
    check_submittable,
    find_cycle,
    node_of,
)

pytestmark = pytest.mark.unit


class Graph:
    """Batches by id; counts lookups so the walk's bound can be checked."""

    def __init__(self, *nodes: Node) -> None:
        self.nodes = {n.id: n for n in nodes}
        self.reads = 0

    async def load(self, batch_id: str) -> Node | None:
        self.reads += 1
        return self.nodes.get(batch_id)


def draft(batch_id: str, *deps: str, tenant: str = "t", phase: str = "draft") -> Node:
    return Node(batch_id, tenant, tuple(deps), phase)


async def test_known_dependencies_of_the_tenant_pass() -> None:
    g = Graph(draft("a"), draft("b", "a", phase="submitted"))
    await check_dependencies(None, "t", ["a", "b"], g.load)
    await check_dependencies("c", "t", ["a", "b"], g.load)


@pytest.mark.parametrize(
    ("deps", "named"),
    [(["nope"], "nope"), (["a", "foreign"], "foreign")],
)
async def test_an_unknown_or_foreign_dependency_is_a_422_naming_it(
    deps: list[str], named: str
) -> None:
    g = Graph(draft("a"), draft("foreign", tenant="other"))
    with pytest.raises(DependencyProblem) as caught:
        await check_dependencies(None, "t", deps, g.load)
    assert caught.value.status == 422
    assert caught.value.extra["dependency"] == named
    assert named in caught.value.detail


async def test_a_batch_cannot_depend_on_itself() -> None:
    g = Graph(draft("a"))
    with pytest.raises(DependencyProblem) as caught:
        await check_dependencies("a", "t", ["a"], g.load)
    assert caught.value.status == 422
    assert "itself" in caught.value.detail


async def test_a_cycle_through_drafts_is_named_in_order() -> None:
    # a → b → c exist as drafts; making c depend on a closes a → b → c → a.
    g = Graph(draft("a", "b"), draft("b", "c"), draft("c"))
    assert await find_cycle("c", ["a"], g.load) == ["c", "a", "b", "c"]
    with pytest.raises(DependencyProblem) as caught:
        await check_dependencies("c", "t", ["a"], g.load)
    assert caught.value.status == 422
    assert caught.value.extra["cycle"] == ["c", "a", "b", "c"]
    assert "c → a → b → c" in caught.value.detail


async def test_the_shortest_cycle_is_named() -> None:
    g = Graph(draft("a", "x", "d"), draft("x", "y"), draft("y", "d"), draft("d"))
    assert await find_cycle("d", ["a"], g.load) == ["d", "a", "d"]


async def test_no_cycle_through_a_diamond() -> None:
    g = Graph(draft("a", "b", "c"), draft("b", "d"), draft("c", "d"), draft("d"))
    assert await find_cycle("e", ["a"], g.load) is None


async def test_the_walk_stops_at_submitted_batches() -> None:
    # A long chain of submitted batches is not read past its first one.
    chain = [draft(f"s{i}", f"s{i + 1}", phase="submitted") for i in range(2000)]
    g = Graph(*chain, draft("new-dep", "s0"))
    assert await find_cycle("me", ["new-dep"], g.load) is None
    assert g.reads == 2


async def test_more_unsubmitted_batches_than_the_bound_is_a_422(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dependencies, "MAX_WALK", 10)
    g = Graph(*[draft(f"d{i}", f"d{i + 1}") for i in range(50)])
    with pytest.raises(DependencyProblem) as caught:
        await find_cycle("me", ["d0"], g.load)
    assert caught.value.status == 422
    assert g.reads <= 11


async def test_submission_needs_every_dependency_submitted() -> None:
    g = Graph(
        draft("ok", phase="submitted"),
        draft("waiting", phase="uploading"),
        draft("dropped", phase="cancelled"),
    )
    await check_submittable(["ok"], g.load)
    with pytest.raises(DependencyProblem) as caught:
        await check_submittable(["ok", "waiting"], g.load)
    assert (caught.value.status, caught.value.extra["dependency_status"]) == (409, "uploading")
    with pytest.raises(DependencyProblem) as caught:
        await check_submittable(["dropped"], g.load)
    assert "cancelled before it was submitted" in caught.value.detail


def test_a_registry_document_reads_as_a_node() -> None:
    doc = {"_id": "b1", "tenant": "t", "config": {"depends_on": {"batches": ["a"], "on": "x"}}}
    assert node_of(doc) == Node("b1", "t", ("a",), "submitted")
    assert node_of({"_id": "b2", "tenant": "t", "phase": "draft", "config": {}}).depends_on == ()
