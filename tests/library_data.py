"""A template library with planted duplicates and conflicts, and the counts a consolidation
must report for it. Unique bodies are 30 words drawn from 600 random ones, so two of them are
never near duplicates at the default threshold (0.9, word by word)."""

from __future__ import annotations

import random
from typing import Any

CATEGORIES = ["billing", "shipping", "support", "marketing", "legal"]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))


def make_library(
    rng: random.Random, total: int = 2000, *, exact: int = 200, near: int = 50, conflicts: int = 50
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """`total` templates: unique ones, `exact` copies differing only in case, whitespace and
    variable names, `near` copies with one word of 30 changed (same category), and
    `conflicts` templates named like a unique one with an unrelated body."""
    vocabulary = list({_word(rng) for _ in range(800)})[:600]
    unique_n = total - exact - near - conflicts
    unique: list[dict[str, Any]] = []
    for i in range(unique_n):
        words = rng.sample(vocabulary, 30)
        var = rng.choice(["name", "order", "date"])
        words.insert(rng.randint(0, 30), f"{{{{{var}}}}}")
        unique.append(
            {
                "name": f"template {i:05d}",
                "category": rng.choice(CATEGORIES),
                "body": " ".join(words),
                "variables": [var],
                "tags": rng.sample(["a", "b", "c", "d"], 2),
            }
        )
    originals = rng.sample(range(unique_n), exact + near + conflicts)
    planted: list[dict[str, Any]] = []
    for n, i in enumerate(originals[:exact]):
        src = unique[i]
        body = src["body"].upper() if n % 2 else src["body"].replace(" ", "  \n ")
        body = body.replace(src["variables"][0], f"v{n}").replace(
            src["variables"][0].upper(), f"V{n}"
        )
        planted.append({**src, "name": f"copy {n:05d}", "body": body, "variables": [f"v{n}"]})
    for n, i in enumerate(originals[exact : exact + near]):
        src = unique[i]
        words = src["body"].split(" ")
        spot = next(k for k in range(len(words)) if "{{" not in words[k])
        words[spot] = "replacedword"
        planted.append({**src, "name": f"near {n:05d}", "body": " ".join(words), "tags": ["near"]})
    for n, i in enumerate(originals[exact + near :]):
        src = unique[i]
        planted.append(
            {
                **src,
                "body": " ".join(rng.sample(vocabulary, 30)) + f" conflict {n}",
                "tags": ["conflict"],
            }
        )
    templates = unique + planted
    rng.shuffle(templates)
    return templates, {
        "templates_processed": total,
        "duplicates_removed": exact + near,
        "conflicts_resolved": conflicts,
    }


def wide_library(rng: random.Random, total: int) -> list[dict[str, Any]]:
    """`total` templates of 30 words of a 2,000-word vocabulary, every tenth a copy of the one
    before in capitals (an exact duplicate, so a consolidation changes it); planned in a
    moment, where dense vocabularies make the similarity join slow."""
    words = [f"w{n:04d}" for n in range(2000)]
    bodies: list[str] = []
    for n in range(total):
        bodies.append(bodies[-1].upper() if n % 10 == 9 else " ".join(rng.sample(words, 30)))
    return [{"name": f"t{n:05d}", "category": "wide", "body": b} for n, b in enumerate(bodies)]
