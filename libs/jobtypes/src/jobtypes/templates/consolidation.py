"""Consolidation as pure functions over template documents (no I/O).

A template is a dict with `_id`, `name`, `category`, `body`, `variables`, `tags`, `status`,
`created_at`, `updated_at`, `version`. Only `active` templates take part.

- Duplicates: equal normalised bodies (case, whitespace and variable names ignored), or, within
  one category, a similarity ratio of the normalised bodies at or above the threshold.
- Conflicts: after duplicates are folded, templates that share a normalised name.
- `plan` splits a scope into units (connected by duplicate or conflict relations) packed into
  job items, so every decision about a template is taken inside one job.
- `consolidate` computes, for one job's templates, the documents to write and the counts."""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from difflib import SequenceMatcher
from typing import Any, Literal

Template = dict[str, Any]
Operation = Literal["merge", "replace", "archive"]
Resolution = Literal["automatic", "interactive", "skip"]

_VARIABLE = re.compile(r"\{\{\s*[^{}]*?\s*\}\}")
_SPACE = re.compile(r"\s+")


def normalise_body(body: str) -> str:
    """Lower case, runs of whitespace as one space, every `{{ variable }}` as `{{}}`."""
    return _SPACE.sub(" ", _VARIABLE.sub("{{}}", body)).strip().lower()


def normalise_name(name: str) -> str:
    return _SPACE.sub(" ", name).strip().lower()


def fingerprint(body: str) -> str:
    return hashlib.sha256(normalise_body(body).encode()).hexdigest()


def similarity(a: str, b: str) -> float:
    """How alike two normalised bodies are, word by word (1.0: the same words in order)."""
    return word_similarity(a.split(" "), b.split(" "))


def word_similarity(a: list[str], b: list[str]) -> float:
    """difflib's ratio of two word lists, the higher of its two orders: difflib's matching is
    greedy, so `ratio(a, b)` and `ratio(b, a)` can differ ("a b a a" and "a c a a b": 0.44
    and 0.67), and whether two templates are duplicates must not depend on which is first."""
    forth = SequenceMatcher(None, a, b, autojunk=False).ratio()
    return (
        forth if forth == 1.0 else max(forth, SequenceMatcher(None, b, a, autojunk=False).ratio())
    )


class _UnionFind:
    def __init__(self, items: Iterable[str]) -> None:
        self.parent = {i: i for i in items}

    def find(self, x: str) -> str:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> list[list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for item in self.parent:
            out[self.find(item)].append(item)
        return sorted((sorted(g) for g in out.values()), key=lambda g: g[0])


def duplicate_clusters(templates: Sequence[Template], threshold: float) -> list[list[str]]:
    """Sets of duplicate template ids (each sorted), including single templates."""
    active = [t for t in templates if t.get("status", "active") == "active"]
    uf = _UnionFind(t["_id"] for t in active)
    by_print: dict[str, list[Template]] = defaultdict(list)
    for t in active:
        by_print[fingerprint(t["body"])].append(t)
    for same in by_print.values():
        for t in same[1:]:
            uf.union(same[0]["_id"], t["_id"])
    if threshold < 1.0:
        representatives: dict[str, list[tuple[list[str], str]]] = defaultdict(list)
        for same in by_print.values():
            t = same[0]
            words = normalise_body(t["body"]).split(" ")
            representatives[t.get("category") or ""].append((words, t["_id"]))
        for group in representatives.values():
            _near_duplicates(sorted(group, key=lambda p: p[1]), threshold, uf)
    return uf.groups()


def _near_duplicates(texts: list[tuple[list[str], str]], threshold: float, uf: _UnionFind) -> None:
    """Joins pairs whose word-by-word similarity reaches the threshold, without comparing
    every pair (a prefix-filtered similarity join).

    The ratio is 2M/(la+lb) with M matched words (in either order), and M <= the multiset
    overlap O of the two word lists <= lb. So ratio >= t needs O >= t(la+lb)/2, hence
    lb >= la*t/(2-t), hence O >= t(la + la*t/(2-t))/2 = la*t/(2-t): the pair shares at least
    a = ceil(la*t/(2-t)) words, and (the same for b) b's own bound. With every text's words
    (numbered by occurrence, so multisets are sets) in one global order, rarest first, two
    texts sharing O words share one among the first la-O+1 of a and lb-O+1 of b, so among the
    first la-a+1 and lb-b+1. Only those prefixes are indexed and probed; candidates are
    checked exactly. (A test compares the result with comparing every pair.)"""
    tokens = [_occurrences(words) for words, _ in texts]
    frequency: Counter[tuple[str, int]] = Counter(t for toks in tokens for t in toks)
    ordered = [sorted(toks, key=lambda t: (frequency[t], t)) for toks in tokens]
    index: dict[tuple[str, int], list[int]] = defaultdict(list)
    for k, toks in enumerate(ordered):
        need = math.ceil(len(toks) * threshold / (2 - threshold) - 1e-9)
        prefix = toks[: max(1, len(toks) - need + 1)]
        candidates = {j for t in prefix for j in index[t]}
        for t in prefix:
            index[t].append(k)
        words, a_id = texts[k]
        for j in candidates:
            other, b_id = texts[j]
            common = len(tokens[k] & tokens[j])
            if 2 * common < threshold * (len(words) + len(other)):
                continue
            if uf.find(a_id) != uf.find(b_id) and word_similarity(words, other) >= threshold:
                uf.union(a_id, b_id)


def _occurrences(words: list[str]) -> set[tuple[str, int]]:
    seen: Counter[str] = Counter()
    out = set()
    for w in words:
        seen[w] += 1
        out.add((w, seen[w]))
    return out


def conflict_id(template_ids: Iterable[str]) -> str:
    return "c_" + hashlib.sha256("|".join(sorted(template_ids)).encode()).hexdigest()[:20]


def plan(
    templates: Sequence[Template], threshold: float, per_job: int = 50
) -> tuple[list[list[str]], dict[str, int]]:
    """Job items (lists of template ids) covering every active template of the scope, and
    the expected counts. Related templates (duplicates, same names) share one job."""
    clusters = duplicate_clusters(templates, threshold)
    by_id = {t["_id"]: t for t in templates}
    uf = _UnionFind(i for c in clusters for i in c)
    for c in clusters:
        for i in c[1:]:
            uf.union(c[0], i)
    names: dict[str, list[str]] = defaultdict(list)
    for c in clusters:
        names[normalise_name(by_id[_canonical(c, by_id)]["name"])].append(c[0])
    conflicts = 0
    for members in names.values():
        if len(members) > 1:
            conflicts += 1
            for m in members[1:]:
                uf.union(members[0], m)
    jobs: list[list[str]] = []
    current: list[str] = []
    for unit in uf.groups():
        if current and len(current) + len(unit) > per_job:
            jobs.append(current)
            current = []
        current = current + unit
    if current:
        jobs.append(current)
    expected = {
        "templates": sum(len(c) for c in clusters),
        "duplicates": sum(len(c) - 1 for c in clusters),
        "conflicts": conflicts,
        "jobs": len(jobs),
    }
    return jobs, expected


def _canonical(cluster: Sequence[str], by_id: dict[str, Template]) -> str:
    """The oldest template of a duplicate cluster (then the smallest id)."""
    return min(cluster, key=lambda i: (by_id[i].get("created_at") or datetime.min, i))


@dataclass
class Outcome:
    """What one job does: documents to write (by id; None deletes), conflicts left for a
    person, and the counts reported as the job's metrics."""

    writes: dict[str, Template | None] = field(default_factory=dict)
    awaiting: list[dict[str, Any]] = field(default_factory=list)
    templates_processed: int = 0
    duplicates_removed: int = 0
    conflicts_resolved: int = 0
    conflicts_skipped: int = 0

    def metrics(self) -> dict[str, int]:
        return {
            "templates_processed": self.templates_processed,
            "duplicates_removed": self.duplicates_removed,
            "conflicts_resolved": self.conflicts_resolved,
            "conflicts_skipped": self.conflicts_skipped,
            "conflicts_awaiting_decision": len(self.awaiting),
        }


def consolidate(
    templates: Sequence[Template],
    *,
    operation: Operation,
    resolution: Resolution,
    threshold: float,
    now: datetime,
    decisions: dict[str, dict[str, Any]] | None = None,
) -> Outcome:
    """The consolidation of one job's templates, computed from their state before the job."""
    decisions = decisions or {}
    by_id = {t["_id"]: dict(t) for t in templates if t.get("status", "active") == "active"}
    out = Outcome(templates_processed=len(by_id))
    survivors: list[str] = []
    for cluster in duplicate_clusters(list(by_id.values()), threshold):
        keep = _canonical(cluster, by_id)
        survivors.append(keep)
        others = [i for i in cluster if i != keep]
        if not others:
            continue
        out.duplicates_removed += len(others)
        canonical = by_id[keep]
        if operation == "merge":
            for i in others:
                canonical["tags"] = _union(canonical.get("tags"), by_id[i].get("tags"))
                canonical["variables"] = _union(
                    canonical.get("variables"), by_id[i].get("variables")
                )
            _touch(canonical, now)
            out.writes[keep] = canonical
        for i in others:
            if operation == "replace":
                out.writes[i] = None
            else:
                status = "merged" if operation == "merge" else "archived"
                out.writes[i] = _touch({**by_id[i], "status": status, "canonical_id": keep}, now)
    names: dict[str, list[str]] = defaultdict(list)
    for i in survivors:
        names[normalise_name(by_id[i]["name"])].append(i)
    for members in names.values():
        if len(members) < 2:
            continue
        cid = conflict_id(members)
        if resolution == "skip":
            out.conflicts_skipped += 1
            continue
        decision = decisions.get(cid)
        if resolution == "interactive" and decision is None:
            out.awaiting.append(
                {"_id": cid, "name": by_id[members[0]]["name"], "template_ids": sorted(members)}
            )
            continue
        current = {i: out.writes.get(i) or by_id[i] for i in members}
        _resolve(current, decision, operation, now, out)
        out.conflicts_resolved += 1
    return out


def _resolve(
    members: dict[str, Template],
    decision: dict[str, Any] | None,
    operation: Operation,
    now: datetime,
    out: Outcome,
) -> None:
    """By rule (no decision): the most recently updated keeps the name and the others are
    renamed `<name> (2)`, `(3)`… (with `archive`, they are archived instead). A person's
    decision `{"keep": id}` keeps that one and archives the others."""
    ranked = sorted(
        members, key=lambda i: (members[i].get("updated_at") or datetime.min, i), reverse=True
    )
    if decision is not None and decision.get("keep") in members:
        keep = decision["keep"]
        for i in ranked:
            if i != keep:
                out.writes[i] = _touch({**members[i], "status": "archived"}, now)
        return
    for n, i in enumerate(ranked[1:], start=2):
        if operation == "archive":
            out.writes[i] = _touch({**members[i], "status": "archived"}, now)
        else:
            out.writes[i] = _touch({**members[i], "name": f"{members[i]['name']} ({n})"}, now)


def _union(a: Iterable[str] | None, b: Iterable[str] | None) -> list[str]:
    out = list(a or [])
    out += [x for x in (b or []) if x not in out]
    return out


def _touch(doc: Template, now: datetime) -> Template:
    doc["updated_at"] = now
    doc["version"] = int(doc.get("version") or 1) + 1
    return doc
