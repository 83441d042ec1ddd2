"""The store answers the services' `_id` queries right: newest-first pages, id lists with
other conditions, a batch's range of ids, and a sort it cannot do is an error, never a wrong
order.

The local store (FerretDB v1 over SQLite) is patched to take these queries in SQL
(devstack.install.FERRETDB_PATCHES): a find sorted by `_id` reads the `_id` index in order
and stops at its limit, and a top-level `_id` or `_id: {$in}` narrows the rows whatever else
the filter says, as does a range of two strings sharing a prefix (a batch's backups or
webhook deliveries: `<batch id>.` to `<batch id>/`). Listings of batches, the audit log and the template library, the stats and
the views looked up for a page depend on both. So do conditions on other top-level fields that
name strings (a status filter reads the batch views' ids that way). Each test checks the store's answer against
the same query answered in Python, so it holds on MongoDB too."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest
from bson import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

pytestmark = pytest.mark.integration

Db = AsyncDatabase[dict[str, Any]]


def batch_like_ids(count: int) -> list[str]:
    """Ids shaped like the services' (`b_` + 12 hex digits of a time + random hex)."""
    rng = random.Random(7)
    return [f"b_{1_700_000_000_000 + 37 * k:012x}{rng.getrandbits(40):010x}" for k in range(count)]


async def test_newest_first_pages_with_a_filter_are_the_python_sorted_answer(db: Db) -> None:
    ids = batch_like_ids(600)
    docs = [{"_id": i, "tenant": "a" if k % 3 else "b", "n": k} for k, i in enumerate(ids)]
    random.Random(3).shuffle(docs)  # stored out of order: the order must come from the sort
    await db["batches"].insert_many(docs)
    mine = sorted((d["_id"] for d in docs if d["tenant"] == "a"), reverse=True)

    pages: list[list[str]] = []
    before: str | None = None
    while True:
        query: dict[str, Any] = {"tenant": "a"}
        if before is not None:
            query["_id"] = {"$lt": before}
        cursor = db["batches"].find(query).sort("_id", DESCENDING).limit(51)
        found = [d["_id"] async for d in cursor]
        pages.append(found[:50])
        if len(found) <= 50:
            break
        before = found[49]
    assert [i for page in pages for i in page] == mine
    assert len(pages) == 8  # 400 of tenant a, 50 a page

    # oldest first, past a cursor, read a few at a time, with a skip
    cursor = (
        db["batches"]
        .find({"tenant": "b", "_id": {"$gt": ids[100]}})
        .sort("_id", ASCENDING)
        .skip(5)
        .batch_size(7)
    )
    theirs = sorted(d["_id"] for d in docs if d["tenant"] == "b" and d["_id"] > ids[100])
    assert [d["_id"] async for d in cursor] == theirs[5:]

    # no filter: the newest ten, and one document read by its id among many
    newest = [d["_id"] async for d in db["batches"].find().sort("_id", -1).limit(10)]
    assert newest == sorted(ids, reverse=True)[:10]
    one = await db["batches"].find_one({"_id": ids[321], "n": 321})
    assert one is not None
    assert one["tenant"] == ("a" if 321 % 3 else "b")


async def test_id_lists_with_other_conditions_touch_only_what_matches(db: Db) -> None:
    ids = batch_like_ids(300)
    coll = db["views"]
    await coll.insert_many(
        [{"_id": i, "phase": "draft" if k % 2 else "submitted", "k": k} for k, i in enumerate(ids)]
    )
    wanted = [*ids[10:60], "b_not_stored"]

    found = {d["_id"] async for d in coll.find({"_id": {"$in": wanted}})}
    assert found == set(ids[10:60])
    drafts = {d["_id"] async for d in coll.find({"_id": {"$in": wanted}, "phase": "draft"})}
    assert drafts == {i for k, i in enumerate(ids) if 10 <= k < 60 and k % 2}
    assert await coll.count_documents({"_id": {"$in": wanted}, "k": {"$gte": 50}}) == 10

    # a guarded update by id changes only the document whose guard holds
    missed = await coll.update_one({"_id": ids[11], "phase": "submitted"}, {"$set": {"x": 1}})
    assert missed.matched_count == 0
    hit = await coll.update_one({"_id": ids[11], "phase": "draft"}, {"$set": {"x": 1}})
    assert hit.modified_count == 1
    many = await coll.update_many({"_id": {"$in": wanted}, "phase": "draft"}, {"$inc": {"k": 1000}})
    assert many.modified_count == 25
    gone = await coll.delete_many({"_id": {"$in": wanted}, "k": {"$lt": 1000}})
    assert gone.deleted_count == 25  # the submitted ones of the list
    left = {d["_id"]: d["k"] async for d in coll.find({"_id": {"$in": ids[:70]}})}
    assert set(left) == set(ids[:10]) | {
        i for k, i in enumerate(ids) if 10 <= k < 60 and k % 2
    } | set(ids[60:70])
    assert all(k >= 1000 for i, k in left.items() if i in wanted)

    # ObjectIds, and a list mixing kinds, which the store answers without narrowing in SQL
    oids = [ObjectId() for _ in range(5)]
    await db["backups"].insert_many(
        [{"_id": o, "n": n} for n, o in enumerate(oids)] + [{"_id": 7, "n": 7}]
    )
    by_oid = [
        d["n"] async for d in db["backups"].find({"_id": {"$in": [oids[1], oids[3]]}}).sort("n", 1)
    ]
    assert by_oid == [1, 3]
    mixed = [d["n"] async for d in db["backups"].find({"_id": {"$in": [oids[0], 7]}}).sort("n", 1)]
    assert mixed == [0, 7]


async def test_ids_whose_text_sorts_apart_never_come_back_in_the_wrong_order(db: Db) -> None:
    """The patched store sorts `_id` by its JSON text, which for these strings is not their
    order ("a" < "a b", but `"a"` > `"a b"` as text): it must refuse rather than mislead."""
    ids = ["a", "a b", "a!", "a<b", "b", "Z", "é"]
    await db["odd"].insert_many([{"_id": i} for i in ids])
    for direction in (ASCENDING, DESCENDING):
        refused: OperationFailure | None = None
        try:
            got = [d["_id"] async for d in db["odd"].find().sort("_id", direction)]
        except OperationFailure as error:
            refused = error
        if refused is None:
            assert got == sorted(ids, reverse=direction == DESCENDING)
        else:
            assert "sort" in str(refused)
    # reads that do not sort are unaffected
    assert {d["_id"] async for d in db["odd"].find({"_id": {"$in": ["a b", "a<b"]}})} == {
        "a b",
        "a<b",
    }


async def test_a_batchs_range_of_ids_is_exactly_the_ids_between_its_bounds(db: Db) -> None:
    """Ranges that start with a batch's id, around ids that JSON writes with escapes (a space,
    `<`, `"`, a backslash, a control character) and ids of other batches that share most of
    the prefix: the store's answer is the one Python gives, for finds and deletes alike."""
    batches = ["b_0193aa01", "b_0193aa02", "b_0193aa0", "b_0193ab01"]
    odd = [".", ". x", ".<", ".<a", '."', ".\\", ".\t", ".é", ".~", ".j1", ".j2", "/", "-", ":"]
    ids = [b + tail for b in batches for tail in odd] + batches + ["c", "a", "b_0193aa01.j1x"]
    coll = db["backups"]
    await coll.insert_many([{"_id": i, "n": k} for k, i in enumerate(ids)])
    ranges: list[dict[str, str]] = [
        {"$gt": "b_0193aa01.", "$lt": "b_0193aa01/"},  # servicekit.backups.batch_range
        {"$gte": "b_0193aa01:", "$lt": "b_0193aa01;"},  # a batch's webhook deliveries
        {"$gte": "b_0193aa01", "$lte": "b_0193aa02.j1"},
        {"$gt": "b_0193aa0", "$lt": "b_0193ab"},
        {"$gte": "a", "$lt": "c"},  # no common prefix
        {"$gt": "b_0193aa01.", "$lt": "b_0193aa01.é"},
        {"$gte": "b_0193aa01.<", "$lt": "b_0193aa01.<z"},  # the prefix stops before `<`
    ]
    for bounds in ranges:
        found = sorted([d["_id"] async for d in coll.find({"_id": bounds})])
        assert found == sorted(i for i in ids if within(i, bounds)), bounds
    gone = await coll.delete_many({"_id": ranges[0], "n": {"$gte": 0}})
    assert gone.deleted_count == sum(within(i, ranges[0]) for i in ids)
    left = {d["_id"] async for d in coll.find()}
    assert left == {i for i in ids if not within(i, ranges[0])}


def matches(doc: dict[str, Any], field: str, wanted: list[Any]) -> bool:
    """`{field: {$in: wanted}}` as MongoDB answers it for these values: the field equals one
    of them (a string only a string, a number any number of that value), or it is an array
    holding one (not in an array within it); a missing field matches none."""
    if field not in doc:
        return False
    value = doc[field]
    candidates = value if isinstance(value, list) else [value]
    return any(same(c, w) for c in candidates for w in wanted)


def same(stored: Any, wanted: Any) -> bool:
    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    if number(stored) and number(wanted):
        return bool(stored == wanted)
    return type(stored) is type(wanted) and bool(stored == wanted)


async def test_conditions_on_other_fields_keep_every_document_they_match(db: Db) -> None:
    """The patched store narrows `{field: string}` and `{field: {$in: strings}}` in SQL by the
    field's JSON text, or an array's elements (a status or tag filter of the batch list). Every kind of value a field can hold, and strings that JSON writes with
    escapes: the store's answer is the one Python gives, for finds, counts, updates and
    deletes alike."""
    oid = ObjectId()
    values: list[Any] = [
        "running", "failed", "completed_with_errors", "", "a b", 'say "hi"', "back\\slash",
        "a<b", "é", "tab\tin", "~tilde", ["running", "x"], [{"s": "failed"}], ["a<b"], [],
        {"status": "running"}, 5, 5.0, "5", True, None, oid, str(oid),
        [5, "five"], ["tab\tin", "ok"], [oid], ["x", "running", "x"],
    ]  # fmt: skip
    docs = [
        {"_id": f"v{k:03}", "status": v, "tenant": "t" if k % 3 else "u", "n": k}
        for k, v in enumerate(values)
    ] + [{"_id": "v_missing", "tenant": "t", "n": -1}]
    coll = db["views"]
    await coll.insert_many(docs)
    asked: list[list[Any]] = [
        ["running"], ["failed"], [""], ["a b"], ['say "hi"'], ["back\\slash"], ["a<b"],
        ["é"], ["tab\tin"], ["~tilde"], ["x"], ["5"], [str(oid)],
        ["queued", "running", "paused", "retrying"], ["completed_with_errors", "failed"],
        ["running", 5], ["nothing", "a<b"], ["status"], ["ok"], ["five"], ["ok", "x"],
    ]  # fmt: skip
    for wanted in asked:
        expected = sorted(d["_id"] for d in docs if matches(d, "status", wanted))
        query: dict[str, Any] = {"status": wanted[0] if len(wanted) == 1 else {"$in": wanted}}
        found = sorted([d["_id"] async for d in coll.find(query, {"_id": 1})])
        assert found == expected, wanted
        # with a tenant's condition and an _id condition, counted too
        mine = [i for i in expected if next(d for d in docs if d["_id"] == i)["tenant"] == "t"]
        both = {"tenant": "t", **query}
        assert sorted([d["_id"] async for d in coll.find(both)]) == mine, wanted
        assert await coll.count_documents(both) == len(mine), wanted
        some = {"_id": {"$in": [d["_id"] for d in docs[::2]]}, **both}
        assert sorted([d["_id"] async for d in coll.find(some)]) == sorted(
            i for i in mine if i in some["_id"]["$in"]
        ), wanted

    changed = await coll.update_many({"status": {"$in": ["running", "a<b"]}}, {"$inc": {"n": 100}})
    assert changed.modified_count == sum(matches(d, "status", ["running", "a<b"]) for d in docs)
    gone = await coll.delete_many({"tenant": "t", "status": "failed"})
    assert gone.deleted_count == sum(
        d["tenant"] == "t" and matches(d, "status", ["failed"]) for d in docs
    )
    assert await coll.count_documents({}) == len(docs) - gone.deleted_count


async def test_a_name_search_keeps_every_document_it_matches(db: Db) -> None:
    """The patched store narrows `{field: {$regex: <literal text>, $options: "i"}}` (the batch
    list's name search) in SQL with LIKE, which ignores the case of ASCII letters only: the
    Kelvin sign and the long s, which a regular expression ignoring case takes for k and s,
    are kept too. Other expressions narrow nothing. The store's answer is Python's."""
    names: list[Any] = [
        "fill 4999", "Fill 49990", "FILL 4999", "fi ll 4999", "nightly 100%", "nightly 1000",
        "a_b", "axb", "back\\slash", "dotted.name", "dottedxname", "\u212aelvin report",
        "kelvin report", "long \u017fs", "long ss", "tab\tfill", "é fill 4999", "",
        ["x fill 4999", "y"], ["nothing"], 4999, None, {"name": "fill 4999"},
    ]  # fmt: skip
    docs = [{"_id": f"n{k:03}", "name": v, "tenant": "t"} for k, v in enumerate(names)]
    docs.append({"_id": "n_missing", "tenant": "t"})
    coll = db["registry"]
    await coll.insert_many(docs)

    def expected(pattern: str, options: str) -> list[str]:
        flags = re.IGNORECASE if "i" in options else 0
        kept = []
        for doc in docs:
            value = doc.get("name")
            candidates = value if isinstance(value, list) else [value]
            if any(isinstance(c, str) and re.search(pattern, c, flags) for c in candidates):
                kept.append(doc["_id"])
        return sorted(kept)

    searches = [
        "fill 4999", "FILL", "4999", "100%", "a_b", "back\\slash", "dotted.name",
        "kelvin", "KELVIN REPORT", "long ss", "LONG SS", "tab\tfill", "", "y", "é",
    ]  # fmt: skip
    for text in searches:
        for options in ("i", ""):
            pattern = re.escape(text)
            query = {"name": {"$regex": pattern, "$options": options}, "tenant": "t"}
            found = sorted([d["_id"] async for d in coll.find(query, {"_id": 1})])
            assert found == expected(pattern, options), (text, options)
    # expressions that are not a literal text: answered as before
    for pattern, options in (("fill \\d+", "i"), ("^fill", ""), ("dotted.name", "i"), ("s", "m")):
        query = {"name": {"$regex": pattern, "$options": options}}
        found = sorted([d["_id"] async for d in coll.find(query, {"_id": 1})])
        assert found == expected(pattern, options), (pattern, options)


def within(value: str, bounds: dict[str, str]) -> bool:
    """`value` against a range filter, as MongoDB compares strings (by their UTF-8 bytes)."""
    v = value.encode()
    checks = {
        "$gt": lambda b: v > b,
        "$gte": lambda b: v >= b,
        "$lt": lambda b: v < b,
        "$lte": lambda b: v <= b,
    }
    return all(checks[op](bound.encode()) for op, bound in bounds.items())
