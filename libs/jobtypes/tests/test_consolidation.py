"""Consolidation rules over template documents: what counts as a duplicate, which one is
kept, how conflicts are resolved, and that planning keeps related templates in one job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobtypes.templates.consolidation import (
    conflict_id,
    consolidate,
    duplicate_clusters,
    fingerprint,
    normalise_body,
    plan,
    similarity,
)
from jobtypes.templates.library import defects

pytestmark = pytest.mark.unit

T0 = datetime(2025, 1, 1, tzinfo=UTC)
NOW = datetime(2025, 6, 1, tzinfo=UTC)


def t(i: int, body: str, name: str | None = None, **kw: Any) -> dict[str, Any]:
    return {
        "_id": f"t{i:03d}",
        "name": name or f"template {i}",
        "category": kw.pop("category", "mail"),
        "body": body,
        "variables": kw.pop("variables", []),
        "tags": kw.pop("tags", []),
        "status": "active",
        "created_at": T0 + timedelta(days=i),
        "updated_at": T0 + timedelta(days=i),
        "version": 1,
        **kw,
    }


def test_normalisation_ignores_case_whitespace_and_variable_names() -> None:
    assert fingerprint("Hello  {{name}},\nwelcome") == fingerprint("hello {{ first }}, welcome")
    assert fingerprint("Hello {{name}}") != fingerprint("Goodbye {{name}}")


def test_near_duplicates_need_the_threshold_and_the_same_category() -> None:
    a = "dear customer your order number has shipped and will arrive tomorrow morning"
    b = a.replace("tomorrow", "today")
    c = a.replace("morning", "evening")
    templates = [t(1, a), t(2, b), t(3, c, category="sms")]
    assert duplicate_clusters(templates, 0.9) == [["t001", "t002"], ["t003"]]
    assert duplicate_clusters(templates, 1.0) == [["t001"], ["t002"], ["t003"]]


def all_pairs_clusters(templates: list[dict[str, Any]], threshold: float) -> list[list[str]]:
    """Duplicate clusters by comparing every pair: equal fingerprints join, and so do the
    first templates of two fingerprints (in the same category) whose similarity reaches the
    threshold."""
    parent = {x["_id"]: x["_id"] for x in templates}

    def find(i: str) -> str:
        while parent[i] != i:
            i = parent[i]
        return i

    first: dict[str, dict[str, Any]] = {}
    for x in templates:
        known = first.setdefault(fingerprint(x["body"]), x)
        parent[find(x["_id"])] = find(known["_id"])
    for a in first.values():
        for b in first.values():
            if a["_id"] < b["_id"] and a["category"] == b["category"]:
                ratio = similarity(normalise_body(a["body"]), normalise_body(b["body"]))
                if ratio >= threshold:
                    parent[find(a["_id"])] = find(b["_id"])
    groups: dict[str, list[str]] = {}
    for i in parent:
        groups.setdefault(find(i), []).append(i)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


@settings(max_examples=150, deadline=None)
@given(
    bodies=st.lists(
        st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=14).map(" ".join),
        min_size=2,
        max_size=14,
    ),
    categories=st.lists(st.sampled_from(["x", "y"]), min_size=14, max_size=14),
    threshold=st.sampled_from([0.5, 0.7, 0.8, 0.9, 0.95]),
)
def test_the_similarity_join_finds_what_comparing_every_pair_finds(
    bodies: list[str], categories: list[str], threshold: float
) -> None:
    """The prefix filter only skips pairs that cannot reach the threshold: on small libraries
    of few words (many near duplicates, lengths apart), the clusters are those of comparing
    every pair."""
    templates = [t(i, body, category=categories[i]) for i, body in enumerate(bodies)]
    assert duplicate_clusters(templates, threshold) == all_pairs_clusters(templates, threshold)


def test_merge_keeps_the_oldest_and_repoints_the_rest() -> None:
    templates = [
        t(2, "Hi {{a}}", tags=["x"], variables=["a"]),
        t(1, "hi  {{b}}", tags=["y"], variables=["b"]),
        t(3, "other"),
    ]
    out = consolidate(templates, operation="merge", resolution="automatic", threshold=1.0, now=NOW)
    assert out.metrics()["duplicates_removed"] == 1
    assert out.metrics()["templates_processed"] == 3
    assert out.writes["t001"]["tags"] == ["y", "x"]
    assert out.writes["t001"]["variables"] == ["b", "a"]
    assert out.writes["t002"]["status"] == "merged"
    assert out.writes["t002"]["canonical_id"] == "t001"
    assert "t003" not in out.writes


@pytest.mark.parametrize(("operation", "expected"), [("replace", None), ("archive", "archived")])
def test_replace_deletes_and_archive_archives_duplicates(operation: Any, expected: Any) -> None:
    out = consolidate(
        [t(1, "same"), t(2, "SAME")], operation=operation, resolution="skip", threshold=1, now=NOW
    )
    written = out.writes["t002"]
    assert (written if written is None else written["status"]) == expected


def test_conflicts_by_rule_rename_all_but_the_newest() -> None:
    templates = [t(1, "first body", name="Welcome"), t(2, "second body", name="welcome ")]
    out = consolidate(templates, operation="merge", resolution="automatic", threshold=1.0, now=NOW)
    assert out.conflicts_resolved == 1
    assert "t002" not in out.writes
    assert out.writes["t001"]["name"] == "Welcome (2)"


def test_skip_leaves_conflicts_alone_and_interactive_parks_them_until_decided() -> None:
    templates = [t(1, "first body", name="Welcome"), t(2, "second body", name="Welcome")]
    skipped = consolidate(templates, operation="merge", resolution="skip", threshold=1, now=NOW)
    assert (skipped.conflicts_skipped, skipped.writes) == (1, {})
    parked = consolidate(
        templates, operation="merge", resolution="interactive", threshold=1, now=NOW
    )
    cid = conflict_id(["t001", "t002"])
    assert parked.awaiting == [{"_id": cid, "name": "Welcome", "template_ids": ["t001", "t002"]}]
    decided = consolidate(
        templates,
        operation="merge",
        resolution="interactive",
        threshold=1,
        now=NOW,
        decisions={cid: {"keep": "t001"}},
    )
    assert decided.awaiting == []
    assert decided.conflicts_resolved == 1
    assert decided.writes["t002"]["status"] == "archived"
    assert "t001" not in decided.writes


def test_plan_keeps_related_templates_in_one_job_and_counts() -> None:
    templates = [t(i, f"unique body number {i} " + "x" * i) for i in range(10)]
    templates += [t(20, "unique body number 3 " + "x" * 3)]  # duplicate of t003
    templates += [t(21, "a completely different text", name="template 7")]  # conflict with t007
    jobs, expected = plan(templates, threshold=1.0, per_job=3)
    assert expected == {"templates": 12, "duplicates": 1, "conflicts": 1, "jobs": len(jobs)}
    assert sorted(i for job in jobs for i in job) == sorted(x["_id"] for x in templates)
    assert all(len(job) <= 3 for job in jobs)
    job_of = {i: n for n, job in enumerate(jobs) for i in job}
    assert job_of["t003"] == job_of["t020"]
    assert job_of["t007"] == job_of["t021"]


def test_the_outcome_is_the_same_when_computed_again() -> None:
    templates = [t(1, "a b c", name="n"), t(2, "A  B C"), t(3, "zzz", name="n")]
    first = consolidate(templates, operation="merge", resolution="automatic", threshold=1, now=NOW)
    again = consolidate(templates, operation="merge", resolution="automatic", threshold=1, now=NOW)
    assert first.writes == again.writes
    assert first.metrics() == again.metrics()


def test_a_whole_template_has_no_defects_and_a_partial_one_names_each() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    whole = {
        "_id": "t_1",
        "name": "Welcome",
        "body": "Hi",
        "category": "mail",
        "tags": ["a"],
        "variables": [],
        "status": "merged",
        "created_at": now,
        "updated_at": now,
        "version": 3,
    }
    assert defects(whole) == []
    assert defects({"_id": "t_2", "name": "Imported", "content": "Hi"}) == [
        "no body",
        "no created_at",
        "no updated_at",
    ]
    odd = {**whole, "name": 7, "body": "", "tags": "a,b", "status": "gone", "version": True}
    assert defects(odd) == [
        "name is not text",
        "no body",
        "tags is not a list of text",
        "status is not one of active, merged, archived",
        "version is not a whole number",
    ]
    assert defects({**whole, "created_at": "2026-01-01"}) == ["created_at is not a date"]
