"""Dependencies between batches (`config.depends_on.batches`) as the API checks them.

A batch may depend only on batches of its own tenant that exist, never on itself, and the
dependencies may not form a cycle. A cycle can only arise through drafts: a new batch has an
id nobody depends on yet, a submitted batch's configuration is fixed, and a batch may be
submitted only once every batch it depends on was submitted. So every batch on a cycle is
unsubmitted, and the walk that looks for one stops at submitted batches; it reads at most
`MAX_WALK` batches (one `_id` lookup each)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

MAX_WALK = 500


@dataclass(frozen=True)
class Node:
    """What the checks need of one batch."""

    id: str
    tenant: str
    depends_on: tuple[str, ...]
    phase: str  # draft | uploading | submitted | cancelled (a draft cancelled before submit)


Load = Callable[[str], Awaitable[Node | None]]


class DependencyProblem(Exception):
    """A dependency the API refuses; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.extra = extra


def node_of(doc: dict[str, Any]) -> Node:
    """A registry document as a `Node`."""
    deps = ((doc.get("config") or {}).get("depends_on") or {}).get("batches") or []
    return Node(
        id=str(doc["_id"]),
        tenant=str(doc.get("tenant", "")),
        depends_on=tuple(str(d) for d in deps),
        phase=str(doc.get("phase", "submitted")),
    )


async def check_dependencies(
    batch_id: str | None, tenant: str, deps: list[str], load: Load
) -> None:
    """Raises `DependencyProblem` (422) if a dependency is `batch_id` itself, unknown, of
    another tenant (indistinguishable from unknown, as everywhere in the API), or if
    `batch_id` depending on `deps` closes a cycle (named in the detail and in `cycle`).
    `batch_id` is None for a batch being created, which nothing can depend on yet."""
    for dep in deps:
        if dep == batch_id:
            raise DependencyProblem(
                422,
                "Invalid dependency",
                f"a batch cannot depend on itself ({dep})",
                dependency=dep,
            )
        node = await load(dep)
        if node is None or node.tenant != tenant:
            raise DependencyProblem(
                422,
                "Unknown dependency",
                f"config.depends_on names batch {dep}, which does not exist",
                dependency=dep,
            )
    if batch_id is not None:
        cycle = await find_cycle(batch_id, deps, load)
        if cycle is not None:
            raise DependencyProblem(
                422,
                "Dependency cycle",
                "config.depends_on would make a cycle: " + " → ".join(cycle),
                cycle=cycle,
            )


async def find_cycle(batch_id: str, deps: list[str], load: Load) -> list[str] | None:
    """The path `batch_id → … → batch_id` if `batch_id` depending on `deps` makes a cycle,
    else None. Breadth-first, so the cycle named is a shortest one. Submitted batches are
    not followed (see the module docstring); more than `MAX_WALK` batches is a 422."""
    parent: dict[str, str] = {}
    frontier: list[str] = []
    for dep in dict.fromkeys(deps):
        parent[dep] = batch_id
        frontier.append(dep)
    read = 0
    while frontier:
        current = frontier.pop(0)
        if current == batch_id:
            path = [batch_id]
            step = parent[batch_id]
            while step != batch_id:
                path.append(step)
                step = parent[step]
            path.append(batch_id)
            return [path[0], *reversed(path[1:-1]), path[-1]]
        read += 1
        if read > MAX_WALK:
            raise DependencyProblem(
                422,
                "Dependency graph too large",
                f"more than {MAX_WALK} unsubmitted batches depend on each other here; "
                "submit some of them first",
            )
        node = await load(current)
        if node is None or node.phase == "submitted":
            continue
        for nxt in node.depends_on:
            if nxt not in parent:
                parent[nxt] = current
                frontier.append(nxt)
    return None


async def check_submittable(deps: list[str], load: Load) -> None:
    """Raises `DependencyProblem` (409) unless every dependency was submitted: the scheduler
    learns of a batch only when it is submitted, and would otherwise cancel the dependent
    batch for depending on a batch it does not know."""
    for dep in deps:
        node = await load(dep)
        if node is None:
            raise DependencyProblem(
                422,
                "Unknown dependency",
                f"config.depends_on names batch {dep}, which does not exist",
                dependency=dep,
            )
        if node.phase == "submitted":
            continue
        if node.phase == "cancelled":
            detail = f"dependency {dep} was cancelled before it was submitted, so it never runs"
        else:
            detail = f"dependency {dep} is {node.phase}: submit it before this batch"
        raise DependencyProblem(
            409, "Conflict", detail, dependency=dep, dependency_status=node.phase
        )
