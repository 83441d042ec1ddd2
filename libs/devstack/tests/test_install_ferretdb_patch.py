"""The lines of FerretDB the installer patches before building (lookups by `_id` use the `_id`
index; the SQLite connection pool has no limit to deadlock on and one writer at a time goes
in; `_id` conditions, conditions naming strings and `_id` sorts are answered in SQL): each applied once, a build stamped without them is built again, and a source tree where a
line is missing stops the install with a clear error instead of building an unpatched store."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack import install
from devstack.paths import Paths

pytestmark = pytest.mark.unit


def tree(tmp_path: Path) -> dict[Path, str]:
    """A source tree holding every patched line, each in a file of its own lines."""
    files: dict[Path, str] = {}
    for relative, before, _after in install.FERRETDB_PATCHES:
        path = tmp_path / relative
        files[path] = files.get(path, "package x\n") + f"// before\n{before}\n// after\n"
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return files


def test_every_line_is_replaced_once(tmp_path: Path) -> None:
    files = tree(tmp_path)
    install.patch_ferretdb(tmp_path)
    for relative, before, after in install.FERRETDB_PATCHES:
        text = (tmp_path / relative).read_text(encoding="utf-8")
        assert text.count(after) == 1
        assert before not in text.replace(after, "")
    assert len(files) == 7


def test_the_id_lookup_uses_the_indexed_expression(tmp_path: Path) -> None:
    tree(tmp_path)
    install.patch_ferretdb(tmp_path)
    text = (tmp_path / "internal/backends/sqlite/metadata/metadata.go").read_text()
    assert "->'_id'" in text
    assert "$._id" not in text


def test_the_pool_is_unbounded_and_writers_take_turns(tmp_path: Path) -> None:
    tree(tmp_path)
    install.patch_ferretdb(tmp_path)
    pool = (tmp_path / "internal/backends/sqlite/metadata/pool/opendb.go").read_text()
    assert "SetMaxOpenConns(0)" in pool
    assert "SetMaxOpenConns(100)" not in pool
    db = (tmp_path / "internal/util/fsql/db.go").read_text()
    # the slot is made, and both ways of writing wait for it (or their caller's cancellation)
    assert "make(chan struct{}, 1)" in db
    assert db.count("case db.writer <- struct{}{}:") == 2
    assert db.count("defer func() { <-db.writer }()") == 2
    assert "return nil, context.Cause(ctx)" in db
    assert "\t\treturn context.Cause(ctx)" in db


def test_id_conditions_and_sorts_go_to_sqlite_and_a_wrong_order_is_refused(
    tmp_path: Path,
) -> None:
    tree(tmp_path)
    install.patch_ferretdb(tmp_path)
    collection = (tmp_path / "internal/backends/sqlite/collection.go").read_text()
    # any filter with a top-level _id (or _id: {$in}) is narrowed, not only {_id: x} alone,
    # and so is one with conditions naming strings on other top-level fields
    assert "whereClause, args = narrowingClause(params.Filter)" in collection
    assert "clause, args := idWhereClause(filter)" in collection
    assert "if params.Filter.Len() == 1 {" not in collection
    assert "WHERE %s IN (%s)" in collection
    # a range of two strings reads the ids starting with their common prefix, cut before the
    # first character JSON escapes
    assert "return idRangeClause(v)" in collection
    assert "c == '\\\\' || c == '<' || c == '>' || c == '&'" in collection
    # a field's JSON text is compared, or an array's elements, and only strings JSON
    # writes as they are (and plain field names) are taken
    assert "IN (%[3]s) OR (json_type(%[1]s, '$.%[2]s') = 'array' AND " in collection
    assert "EXISTS (SELECT 1 FROM json_each(%[1]s, '$.%[2]s') WHERE value IN (%[3]s))))" in (
        collection
    )
    assert "c < ' ' || c > '~' || c == '\"' || c == '\\\\' || c == '<'" in collection
    assert "func plainFieldName(k string) bool {" in collection
    # a name search of literal text is a LIKE that keeps what ignoring case in Go would match
    assert "LIKE ? ESCAPE" in collection
    assert "case c == 'k' || c == 'K' || c == 's' || c == 'S':" in collection
    # the rows of a sorted query are checked as they come
    assert (
        "checkIDOrder(newQueryIterator(ctx, rows, params.OnlyRecordIDs), params.Sort)" in collection
    )
    assert "sorting by _id in SQLite" in collection
    query = (tmp_path / "internal/backends/sqlite/query.go").read_text()
    assert "column = metadata.IDColumn" in query
    assert '" ORDER BY %s%s", column, order' in query
    find = (tmp_path / "internal/handler/msg_find.go").read_text()
    # the handler hands the sort to SQLite and no longer sorts everything in memory after
    assert 'if params.Sort.Keys()[0] == "_id" {' in find
    assert "params.Sort = nil" in find
    contract = (tmp_path / "internal/backends/collection.go").read_text()
    assert 'sortValue = params.Sort.Map()["_id"].(int64)' in contract


def test_a_source_without_a_line_stops_the_install(tmp_path: Path) -> None:
    files = tree(tmp_path)
    pool = tmp_path / "internal/backends/sqlite/metadata/pool/opendb.go"
    files[pool] = files[pool].replace("SetMaxOpenConns(100)", "SetMaxOpenConns(50)")
    pool.write_text(files[pool])
    with pytest.raises(install.InstallError, match=r"opendb\.go.*not there once"):
        install.patch_ferretdb(tmp_path)


def test_a_build_without_the_patches_is_not_up_to_date(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    paths.cache_bin.mkdir(parents=True)
    paths.ferretdb_bin.write_text("binary")
    stamp = paths.cache_bin / "ferretdb.version"
    stamp.write_text("v1.24.2\n")
    assert install.ferretdb_installed(paths) is None
    stamp.write_text("v1.24.2 id-index-1\n")  # built before the pool patches
    assert install.ferretdb_installed(paths) is None
    stamp.write_text("v1.24.2 id-index-1+pool-2\n")  # built before the _id query patches
    assert install.ferretdb_installed(paths) is None
    stamp.write_text("v1.24.2 id-index-1+pool-2+id-query-2\n")  # before the field conditions
    assert install.ferretdb_installed(paths) is None
    stamp.write_text("v1.24.2 id-index-1+pool-2+id-query-2+field-query-1\n")  # arrays kept whole
    assert install.ferretdb_installed(paths) is None
    stamp.write_text("v1.24.2 id-index-1+pool-2+id-query-2+field-query-2\n")  # before LIKE
    assert install.ferretdb_installed(paths) is None
    stamp.write_text(f"v1.24.2 {install.FERRETDB_PATCH_NAME}\n")
    assert install.ferretdb_installed(paths) == "v1.24.2"
