"""Fetch and build the dev stack's tools into ``.cache/`` (idempotent).

Contract:
- Kafka: ``mvn dependency:copy-dependencies`` on ``libs/devstack/kafka/pom.xml``
  fills ``.cache/kafka/lib`` (via a temp dir + rename, so a failed or upgraded
  copy never leaves mixed versions). A stamp holding the POM's SHA-256 makes
  the next run a no-op until the POM changes.
- FerretDB: the module source of the newest available ``v1.24.x`` is taken from
  the Go module proxy into ``.cache/go/mod``, copied to
  ``.cache/go/build/ferretdb``, given ``build/version/version.txt`` (FerretDB
  panics at start-up without it when built from its own module) and built with
  ``CGO_ENABLED=0 go build`` into ``.cache/bin/ferretdb``, with a few lines patched (see
  ``FERRETDB_PATCHES``: lookups by ``_id`` use the ``_id`` index; the SQLite connection pool
  has no limit for concurrent updates to deadlock on; writes to a database take turns in
  FerretDB; a top-level ``_id`` condition narrows any query in SQL, and a find sorted by
  ``_id`` reads the ``_id`` index in order). A stamp holding the version and the patches'
  name makes the next run a no-op.
  Afterwards the Go module and build caches (~1 GB) are deleted unless
  ``BATCHYARD_KEEP_GO_CACHE`` is set, so a CI cache of ``.cache/`` stays ~150 MB.
- kustomize (renders k8s/ in the tests): ``go install`` of its module at
  ``KUSTOMIZE_VERSION`` into ``.cache/bin/kustomize`` with a version stamp, sharing
  FerretDB's Go caches (pruned the same way).
- promtool and prometheus (alert-rule tests, ``make up PROMETHEUS=1``): Debian's
  ``prometheus`` package, installed with ``apt-get`` when either binary is missing and
  this runs as root; otherwise a missing one is a :class:`MissingToolError`.
- Chromium (for the browser tests): Debian's ``chromium`` package at ``/usr/bin/chromium``,
  installed with ``apt-get`` when it is missing and this runs as root; otherwise a hint is
  printed (``make up`` does not need it). Playwright's own browser download is never used.
- Tools are checked only when a step has work to do; a missing one raises
  :class:`MissingToolError` with a one-line reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from devstack.paths import Paths

FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
FERRETDB_VERSIONS = ("v1.24.2", "v1.24.1", "v1.24.0")


def _go_take_writer(zero: str) -> str:
    """Go statements that wait for the database's writer slot (or the caller's cancellation)
    and give it back when the function returns."""
    return (
        "\tselect {\n\tcase db.writer <- struct{}{}:\n\t\tdefer func() { <-db.writer }()\n"
        f"\tcase <-ctx.Done():\n\t\treturn {zero}context.Cause(ctx)\n\t}}\n\n"
    )


# Go added to FerretDB's SQLite collection (see the query patches in FERRETDB_PATCHES).
_GO_ID_QUERIES = """\
// narrowingClause is the WHERE clause of a query (patched in by Batchyard): the filter's
// top-level _id condition (idWhereClause) and its conditions on other top-level fields
// (fieldConditions), all of them. Like each of them, it may keep more rows than the filter
// matches, never fewer: the handler applies the whole filter to the rows found.
func narrowingClause(filter *types.Document) (string, []any) {
	clause, args := idWhereClause(filter)
	conds, more := fieldConditions(filter)

	if len(conds) == 0 {
		return clause, args
	}

	if clause == "" {
		clause = " WHERE "
	} else {
		clause += " AND "
	}

	return clause + strings.Join(conds, " AND "), append(args, more...)
}

// fieldConditions narrows a query by its top-level conditions on fields other than _id that
// name a string, or $in of at most 1,000 strings (patched in by Batchyard): a row stays when
// the field's JSON text is one of theirs, or when the field is an array holding one of them
// (a tag); and by a $regex of literal text (likePattern), a row stays when its string field
// is LIKE it, or the field is not a string. SQLite reads each row's JSON for it, much faster
// than the handler parses the row into a document. Only field names of letters, digits and
// '_' are taken, and strings that JSON writes as they are, so that their text is the stored
// one.
func fieldConditions(filter *types.Document) ([]string, []any) {
	var conds []string
	var args []any

	for _, k := range filter.Keys() {
		if k == "_id" || !plainFieldName(k) {
			continue
		}

		if like := likePattern(must.NotFail(filter.Get(k))); like != "" {
			conds = append(conds, fmt.Sprintf(
				"(json_extract(%[1]s, '$.\\"$s\\".p.%[2]s.t') IS NOT 'string' OR "+
					"%[1]s->>'%[2]s' LIKE ? ESCAPE '\\\\')",
				metadata.DefaultColumn, k,
			))
			args = append(args, like)

			continue
		}

		values := plainStrings(must.NotFail(filter.Get(k)))
		if len(values) == 0 {
			continue
		}

		marks := strings.TrimSuffix(strings.Repeat("?, ", len(values)), ", ")
		conds = append(conds, fmt.Sprintf(
			"(%[1]s->'%[2]s' IN (%[3]s) OR (json_type(%[1]s, '$.%[2]s') = 'array' AND "+
				"EXISTS (SELECT 1 FROM json_each(%[1]s, '$.%[2]s') WHERE value IN (%[3]s))))",
			metadata.DefaultColumn, k, marks,
		))

		for _, s := range values {
			args = append(args, string(must.NotFail(sjson.MarshalSingleValue(s))))
		}

		for _, s := range values {
			args = append(args, s) // an element's value, as SQLite reads it from the JSON
		}
	}

	return conds, args
}

// likePattern is a LIKE pattern (escaped with a backslash) that every string matches that a
// field's condition {$regex: pattern, $options: "" or "i"} matches, when the pattern is a
// literal text of printable ASCII (characters other than letters and digits may be escaped
// with a backslash, as a name search escapes them); "" otherwise. LIKE ignores the case of
// ASCII letters; k and s become '_' (any one character), as Go, ignoring case, also matches
// them with the Kelvin sign and the long s. So a row the pattern leaves out never matches.
func likePattern(v any) string {
	cond, ok := v.(*types.Document)
	if !ok || cond.Len() > 2 {
		return ""
	}

	raw, err := cond.Get("$regex")
	if err != nil {
		return ""
	}

	pattern, ok := raw.(string)
	if !ok {
		return ""
	}

	if cond.Len() == 2 {
		options, err := cond.Get("$options")
		if err != nil || (options != "" && options != "i") {
			return ""
		}
	}

	var b strings.Builder
	b.WriteByte('%')

	for i := 0; i < len(pattern); i++ {
		c := pattern[i]

		switch {
		case c == '\\\\':
			i++
			if i == len(pattern) {
				return ""
			}

			c = pattern[i]
			if (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') {
				return "" // an escaped letter or digit: a class, an assertion, a back-reference
			}
		case strings.IndexByte(".^$*+?()[]{}|", c) >= 0:
			return ""
		}

		switch {
		case c < ' ' || c > '~':
			return ""
		case c == 'k' || c == 'K' || c == 's' || c == 'S':
			b.WriteByte('_')
		case c == '%' || c == '_' || c == '\\\\':
			b.WriteByte('\\\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}

	b.WriteByte('%')

	return b.String()
}

// plainFieldName is true for a name of ASCII letters, digits and '_', not starting with a digit.
func plainFieldName(k string) bool {
	if k == "" || (k[0] >= '0' && k[0] <= '9') {
		return false
	}

	for i := 0; i < len(k); i++ {
		c := k[i]
		letter := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !(c == '_' || letter || (c >= '0' && c <= '9')) {
			return false
		}
	}

	return true
}

// plainStrings is the strings a field's condition names (a string, or $in of strings), if
// JSON writes every one as it is (printable ASCII but '"', the backslash, '<', '>' and '&',
// which Go's encoder escapes); nil otherwise.
func plainStrings(v any) []string {
	var values []string

	switch v := v.(type) {
	case string:
		values = []string{v}
	case *types.Document:
		if v.Len() != 1 {
			return nil
		}

		in, err := v.Get("$in")
		if err != nil {
			return nil
		}

		list, ok := in.(*types.Array)
		if !ok || list.Len() == 0 || list.Len() > 1000 {
			return nil
		}

		for i := 0; i < list.Len(); i++ {
			s, ok := must.NotFail(list.Get(i)).(string)
			if !ok {
				return nil
			}

			values = append(values, s)
		}
	default:
		return nil
	}

	for _, s := range values {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < ' ' || c > '~' || c == '"' || c == '\\\\' || c == '<' || c == '>' || c == '&' {
				return nil
			}
		}
	}

	return values
}

// idWhereClause narrows a query to the rows whose _id the filter's top-level _id
// condition names: a string or ObjectID, $in of at most 30,000 of them, or a range of two
// strings with a common prefix (patched in by Batchyard). The handler applies the whole
// filter to the rows found, so the clause may keep more rows, never fewer.
func idWhereClause(filter *types.Document) (string, []any) {
	v, err := filter.Get("_id")
	if err != nil {
		return "", nil
	}

	switch v := v.(type) {
	case string, types.ObjectID:
		arg := string(must.NotFail(sjson.MarshalSingleValue(v)))

		return fmt.Sprintf(` WHERE %s = ?`, metadata.IDColumn), []any{arg}
	case *types.Document:
		if v.Len() == 2 {
			return idRangeClause(v)
		}

		if v.Len() != 1 {
			return "", nil
		}

		in, err := v.Get("$in")
		if err != nil {
			return "", nil
		}

		ids, ok := in.(*types.Array)
		if !ok || ids.Len() == 0 || ids.Len() > 30000 {
			return "", nil
		}

		args := make([]any, 0, ids.Len())

		for i := 0; i < ids.Len(); i++ {
			id := must.NotFail(ids.Get(i))
			switch id.(type) {
			case string, types.ObjectID:
				args = append(args, string(must.NotFail(sjson.MarshalSingleValue(id))))
			default:
				return "", nil
			}
		}

		marks := strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")

		return fmt.Sprintf(` WHERE %s IN (%s)`, metadata.IDColumn, marks), args
	}

	return "", nil
}

// idRangeClause narrows `_id: {$gt or $gte: lo, $lt or $lte: hi}` (two strings) to the ids
// that start with the longest prefix lo and hi share and JSON writes as it is (ASCII from
// '#' to '}' but the backslash, '<', '>' and '&'): every string between lo and hi starts
// with their common prefix, so its JSON text starts with `"` and that prefix.
func idRangeClause(cond *types.Document) (string, []any) {
	var lo, hi string
	var haveLo, haveHi bool

	for _, k := range cond.Keys() {
		s, ok := must.NotFail(cond.Get(k)).(string)
		if !ok {
			return "", nil
		}

		switch k {
		case "$gt", "$gte":
			lo, haveLo = s, true
		case "$lt", "$lte":
			hi, haveHi = s, true
		default:
			return "", nil
		}
	}

	if !haveLo || !haveHi {
		return "", nil
	}

	n := 0
	for n < len(lo) && n < len(hi) && lo[n] == hi[n] {
		c := lo[n]
		if c < '#' || c > '}' || c == '\\\\' || c == '<' || c == '>' || c == '&' {
			break
		}
		n++
	}

	if n == 0 {
		return "", nil
	}

	from := `"` + lo[:n]
	until := `"` + lo[:n-1] + string([]byte{lo[n-1] + 1})
	q := fmt.Sprintf(` WHERE %s >= ? AND %s < ?`, metadata.IDColumn, metadata.IDColumn)

	return q, []any{from, until}
}

// checkIDOrder passes on the documents of a query that SQLite sorted by _id (patched in by
// Batchyard), failing the query if one comes out of order: SQLite sorts the _id values by
// their JSON text, through the _id index, which is their order for strings of letters,
// digits and most punctuation (all Batchyard's ids), not for every mix of values.
func checkIDOrder(iter types.DocumentsIterator, sort *types.Document) types.DocumentsIterator {
	if sort.Len() != 1 {
		return iter
	}

	v, err := sort.Get("_id")
	if err != nil {
		return iter
	}

	return &idOrderIterator{DocumentsIterator: iter, order: types.SortType(v.(int64))}
}

type idOrderIterator struct {
	types.DocumentsIterator
	order types.SortType
	last  any
}

func (iter *idOrderIterator) Next() (struct{}, *types.Document, error) {
	unused, doc, err := iter.DocumentsIterator.Next()
	if err != nil {
		return unused, doc, err
	}

	id, err := doc.Get("_id")
	if err != nil {
		id = types.Null
	}

	if iter.last != nil {
		res := types.CompareOrder(iter.last, id, types.Ascending)
		backwards := (iter.order == types.Ascending && res == types.Greater) ||
			(iter.order == types.Descending && res == types.Less)
		if backwards {
			return unused, nil, lazyerrors.Errorf(
				"sorting by _id in SQLite: %s came after %s "+
					"(these _id values do not sort as their JSON text)",
				types.FormatAnyValue(id), types.FormatAnyValue(iter.last),
			)
		}
	}

	iter.last = id

	return unused, doc, nil
}

"""

# Lines of FerretDB v1.24's source the installer replaces before building (path, before, after);
# each must be there exactly once.
FERRETDB_PATCHES = (
    # Its SQLite backend finds a document by `_id` with the expression `_ferretdb_sjson->'$._id'`,
    # while the unique `_id` index it creates on every collection is on `_ferretdb_sjson->"_id"`.
    # SQLite uses an expression index only for the same expression, so every update, delete and
    # `_id` find scanned the whole table, parsing each row's JSON: an update's cost grew with
    # everything stored in the collection (docs/performance.md, "The store's updates scan";
    # FerretDB issue #3235). `->'_id'` reads the same value and matches the index, including on
    # tables created before the patch.
    (
        "internal/backends/sqlite/metadata/metadata.go",
        """IDColumn = DefaultColumn + "->'$._id'\"""",
        """IDColumn = DefaultColumn + "->'_id'\"""",
    ),
    # An update or findAndModify keeps its query's rows open (one SQLite connection of the
    # database's pool) while it writes in a transaction (a second connection). The pool held at
    # most 100: 100 such commands at once each held one and waited for a second that none would
    # release, and the store stopped answering on that database until clients hung up
    # (docs/architecture.md, "The store"). Unbounded, every command gets its second connection.
    (
        "internal/backends/sqlite/metadata/pool/opendb.go",
        "\tdb.SetMaxOpenConns(100)\n",
        "\tdb.SetMaxOpenConns(0)\n",
    ),
    # SQLite lets one writer in at a time; the others retried in its busy handler's sleeps (up to
    # 100 ms each, failing with SQLITE_BUSY after 10 s), so the more writers at once, the fewer
    # writes a second. One writer at a time per database instead, the rest queued in order
    # (and given up when their client goes), for transactions and single statements alike.
    (
        "internal/util/fsql/db.go",
        "\tBatchSize int\n}",
        "\tBatchSize int\n\twriter    chan struct{}\n}",
    ),
    (
        "internal/util/fsql/db.go",
        "\t\ttoken:            resource.NewToken(),\n",
        "\t\ttoken:            resource.NewToken(),\n"
        "\t\twriter:           make(chan struct{}, 1),\n",
    ),
    (
        "internal/util/fsql/db.go",
        "args ...any) (sql.Result, error) {\n",
        "args ...any) (sql.Result, error) {\n" + _go_take_writer("nil, "),
    ),
    (
        "internal/util/fsql/db.go",
        "f func(*Tx) error) (err error) {\n",
        "f func(*Tx) error) (err error) {\n" + _go_take_writer(""),
    ),
    # Its SQLite backend narrowed a query in SQL only when the filter was `{_id: <string or
    # ObjectID>}` alone, and sorted only by `$natural`: any other filter or sort read and parsed
    # every document of the collection in Go (50–300 µs a document here, by its size), so
    # listing the newest 50 of 2,000 batches took 1.1 s and `/v1/stats` 6.8 s. Now a top-level
    # `_id` condition (a string or ObjectID, `$in` of up to 30,000, or a range of two strings
    # with a common prefix) narrows the rows in SQL whatever else the filter says (the handler
    # still applies all of it, so the rows kept may be more, never fewer), and a find sorted by
    # `_id` alone reads the rows through the `_id` index in order, so a limit or a reader that
    # stops early stops the reading (`checkIDOrder` fails the query rather than return a wrong
    # order for ids whose JSON text sorts apart from their value). So do top-level conditions on
    # other fields that name a string or `$in` of strings (a status, a tenant, a tag): SQLite
    # compares the field's JSON text in each row, or an array's elements; and a `$regex` of
    # literal text (a name search) is a LIKE; the handler parses only the rows kept (a status
    # filter over 5,000 batch views: see docs/performance.md).
    (
        "internal/backends/sqlite/collection.go",
        "\tif params.Filter.Len() == 1 {\n"
        '\t\tv, _ := params.Filter.Get("_id")\n'
        "\t\tswitch v.(type) {\n"
        "\t\tcase string, types.ObjectID:\n"
        "\t\t\twhereClause = fmt.Sprintf(` WHERE %s = ?`, metadata.IDColumn)\n"
        "\t\t\targs = []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}\n"
        "\t\t}\n"
        "\t}\n",
        "\twhereClause, args = narrowingClause(params.Filter)\n",
    ),
    (
        "internal/backends/sqlite/collection.go",
        "\t\tIter: newQueryIterator(ctx, rows, params.OnlyRecordIDs),\n",
        "\t\tIter: checkIDOrder(newQueryIterator(ctx, rows, params.OnlyRecordIDs), params.Sort),\n",
    ),
    (
        "internal/backends/sqlite/collection.go",
        "// Explain implements backends.Collection interface.\n",
        _GO_ID_QUERIES + "// Explain implements backends.Collection interface.\n",
    ),
    (
        "internal/backends/sqlite/query.go",
        '\tv := must.NotFail(sort.Get("$natural"))\n',
        "\tcolumn := metadata.RecordIDColumn\n\n"
        '\tv, err := sort.Get("$natural")\n'
        "\tif err != nil {\n"
        "\t\tcolumn = metadata.IDColumn\n"
        '\t\tv = must.NotFail(sort.Get("_id"))\n'
        "\t}\n\n",
    ),
    (
        "internal/backends/sqlite/query.go",
        '\treturn fmt.Sprintf(" ORDER BY %s%s", metadata.RecordIDColumn, order)\n',
        '\treturn fmt.Sprintf(" ORDER BY %s%s", column, order)\n',
    ),
    (
        "internal/backends/collection.go",
        "\t\tparams = new(QueryParams)\n\t}\n\n"
        "\tif params.Sort.Len() != 0 {\n"
        "\t\tmust.BeTrue(params.Sort.Len() == 1)\n"
        '\t\tsortValue := params.Sort.Map()["$natural"].(int64)\n',
        "\t\tparams = new(QueryParams)\n\t}\n\n"
        "\tif params.Sort.Len() != 0 {\n"
        "\t\tmust.BeTrue(params.Sort.Len() == 1)\n"
        '\t\tsortValue, ok := params.Sort.Map()["$natural"].(int64)\n'
        "\t\tif !ok {\n"
        '\t\t\tsortValue = params.Sort.Map()["_id"].(int64)\n'
        "\t\t}\n",
    ),
    (
        "internal/handler/msg_find.go",
        '\tcase params.Sort.Len() == 1:\n\t\tif params.Sort.Keys()[0] != "$natural" {\n',
        "\tcase params.Sort.Len() == 1:\n"
        '\t\tif params.Sort.Keys()[0] == "_id" {\n'
        "\t\t\t// sorted by SQLite through the _id index (patched in by Batchyard; checkIDOrder)\n"
        "\t\t\tqp.Sort = params.Sort\n"
        "\t\t\tparams.Sort = nil\n\n"
        "\t\t\tbreak\n"
        "\t\t}\n\n"
        '\t\tif params.Sort.Keys()[0] != "$natural" {\n',
    ),
)
FERRETDB_PATCH_NAME = "id-index-1+pool-2+id-query-2+field-query-3"
FERRETDB_VERSION_ENV = "BATCHYARD_FERRETDB_VERSION"
KEEP_GO_CACHE_ENV = "BATCHYARD_KEEP_GO_CACHE"
KAFKA_STAMP = ".batchyard-installed"

Printer = Callable[[str], None]


class MissingToolError(RuntimeError):
    """A required command-line tool is not installed."""


class InstallError(RuntimeError):
    """A tool ran but the install step failed."""


def find_tool(name: str, fallbacks: Sequence[str] = ()) -> str:
    """Absolute path of ``name`` from PATH or ``fallbacks``; raises MissingToolError."""
    found = shutil.which(name)
    if found:
        return found
    for candidate in fallbacks:
        if Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise MissingToolError(f"`{name}` not found on PATH (looked also in {', '.join(fallbacks)})")


def find_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    extra = [str(Path(java_home) / "bin" / "java")] if java_home else []
    return find_tool("java", [*extra, "/usr/bin/java"])


def find_mvn() -> str:
    return find_tool("mvn", ["/usr/bin/mvn", "/usr/share/maven/bin/mvn"])


def find_go() -> str:
    return find_tool("go", ["/usr/local/go/bin/go", "/usr/lib/go/bin/go"])


def _run(argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(list(argv), env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        raise InstallError(f"`{' '.join(argv[:3])} ...` failed (exit {done.returncode}):\n{tail}")
    return done.stdout


# --------------------------------------------------------------------------
# Kafka
# --------------------------------------------------------------------------


def pom_digest(pom: Path) -> str:
    """SHA-256 of the POM text: the Kafka install stamp."""
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def kafka_installed(paths: Paths) -> bool:
    """Jars present and stamped with the current POM's digest."""
    stamp = paths.kafka_lib / KAFKA_STAMP
    if not stamp.exists() or not paths.kafka_pom.exists():
        return False
    if not any(paths.kafka_lib.glob("kafka_2.13-*.jar")):
        return False
    return stamp.read_text(encoding="utf-8").strip() == pom_digest(paths.kafka_pom)


def install_kafka(paths: Paths, say: Printer = print) -> bool:
    """Copy the broker classpath into ``.cache/kafka/lib``; True if work was done."""
    if kafka_installed(paths):
        say(f"kafka: up to date ({len(list(paths.kafka_lib.glob('*.jar')))} jars)")
        return False
    if not paths.kafka_pom.exists():
        raise InstallError(f"{paths.kafka_pom} is missing")
    find_java()
    mvn = find_mvn()
    staging = paths.kafka_home / "lib.new"
    shutil.rmtree(staging, ignore_errors=True)
    say(f"kafka: resolving jars with Maven into {paths.kafka_lib} (first run downloads ~45 MB)")
    started = time.monotonic()
    _run(
        [
            mvn,
            "-q",
            "-B",
            f"-Dmaven.repo.local={paths.m2}",
            "-f",
            str(paths.kafka_pom),
            f"-Dbatchyard.kafka.lib={staging}",
            f"-Dbatchyard.kafka.build={paths.kafka_home / 'build'}",
            "dependency:copy-dependencies",
        ],
        cwd=paths.root,
    )
    jars = list(staging.glob("*.jar"))
    if not any(j.name.startswith("kafka_2.13-") for j in jars):
        raise InstallError(f"maven finished but no kafka_2.13 jar landed in {staging}")
    (staging / KAFKA_STAMP).write_text(pom_digest(paths.kafka_pom) + "\n", encoding="utf-8")
    shutil.rmtree(paths.kafka_lib, ignore_errors=True)
    staging.rename(paths.kafka_lib)
    say(f"kafka: {len(jars)} jars installed in {time.monotonic() - started:.0f}s")
    return True


# --------------------------------------------------------------------------
# FerretDB
# --------------------------------------------------------------------------


def go_env(paths: Paths) -> dict[str, str]:
    """Environment that keeps every Go artefact under ``.cache/go``."""
    env = dict(os.environ)
    go_dir = paths.go_path.absolute()
    env.update(
        CGO_ENABLED="0",
        GOBIN=str(paths.cache_bin.absolute()),
        GOPATH=str(go_dir),
        GOMODCACHE=str(go_dir / "mod"),
        GOCACHE=str(go_dir / "cache"),
        GOFLAGS="-modcacherw",
        GOTOOLCHAIN="local",
    )
    return env


def _ferretdb_stamp(paths: Paths) -> Path:
    return paths.cache_bin / "ferretdb.version"


def ferretdb_installed(paths: Paths) -> str | None:
    """The installed FerretDB version if the binary and its stamp are present."""
    stamp = _ferretdb_stamp(paths)
    if not paths.ferretdb_bin.exists() or not stamp.exists():
        return None
    version, _, patch = stamp.read_text(encoding="utf-8").strip().partition(" ")
    if patch != FERRETDB_PATCH_NAME:
        return None  # built without the patch (or with an older one): build again
    wanted = os.environ.get(FERRETDB_VERSION_ENV)
    if wanted and wanted != version:
        return None
    return version


def patch_ferretdb(src: Path) -> None:
    """Applies `FERRETDB_PATCHES` to FerretDB's source tree at `src`."""
    for relative, before, after in FERRETDB_PATCHES:
        path = src / relative
        text = path.read_text(encoding="utf-8")
        if text.count(before) != 1:
            raise InstallError(
                f"{relative}: the line to patch ({before.strip()}) is not there once"
            )
        path.write_text(text.replace(before, after), encoding="utf-8")


def _download_module(go: str, env: dict[str, str], versions: Sequence[str]) -> tuple[str, Path]:
    errors: list[str] = []
    for version in versions:
        done = subprocess.run(
            [go, "mod", "download", "-json", f"{FERRETDB_MODULE}@{version}"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            info = json.loads(done.stdout) if done.stdout.strip() else {}
        except json.JSONDecodeError:
            info = {}
        if done.returncode == 0 and info.get("Dir"):
            return version, Path(info["Dir"])
        errors.append(f"{version}: {info.get('Error') or done.stderr.strip()[:200]}")
    raise InstallError("no FerretDB v1.24.x module could be downloaded:\n" + "\n".join(errors))


def install_ferretdb(paths: Paths, say: Printer = print, *, prune: bool = True) -> bool:
    """Build FerretDB v1.24.x into ``.cache/bin/ferretdb``; True if work was done."""
    installed = ferretdb_installed(paths)
    if installed:
        say(f"ferretdb: up to date ({installed})")
        return False
    go = find_go()
    env = go_env(paths)
    for key in ("GOPATH", "GOMODCACHE", "GOCACHE"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    paths.cache_bin.mkdir(parents=True, exist_ok=True)
    wanted = os.environ.get(FERRETDB_VERSION_ENV)
    versions = (wanted,) if wanted else FERRETDB_VERSIONS
    started = time.monotonic()
    say(f"ferretdb: fetching {FERRETDB_MODULE} ({' / '.join(versions)}) via the Go module proxy")
    version, module_dir = _download_module(go, env, versions)
    src = paths.go_path / "build" / "ferretdb"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(module_dir, src)
    for path in (src, *src.rglob("*")):
        path.chmod(path.stat().st_mode | 0o200)
    (src / "build" / "version" / "version.txt").write_text(version + "\n", encoding="utf-8")
    patch_ferretdb(src)
    tmp_bin = paths.cache_bin / "ferretdb.tmp"
    say(f"ferretdb: building {version} with CGO_ENABLED=0 (first run takes a few minutes)")
    _run(
        [
            go,
            "build",
            "-trimpath",
            "-buildvcs=false",
            "-o",
            str(tmp_bin.absolute()),
            "./cmd/ferretdb",
        ],
        env=env,
        cwd=src,
    )
    tmp_bin.replace(paths.ferretdb_bin)
    _ferretdb_stamp(paths).write_text(f"{version} {FERRETDB_PATCH_NAME}\n", encoding="utf-8")
    say(f"ferretdb: {version} built in {time.monotonic() - started:.0f}s -> {paths.ferretdb_bin}")
    if prune and not os.environ.get(KEEP_GO_CACHE_ENV):
        prune_go_caches(paths, say)
    return True


def prune_go_caches(paths: Paths, say: Printer = print) -> None:
    """Drop Go's module/build caches (~1 GB) once the binary exists; only it is needed."""
    for sub in ("build", "cache", "mod", "pkg"):
        shutil.rmtree(paths.go_path / sub, ignore_errors=True)
    say(f"go: pruned Go caches under {paths.go_path} (set {KEEP_GO_CACHE_ENV}=1 to keep)")


# --------------------------------------------------------------------------
# kustomize and Prometheus (deployment checks)
# --------------------------------------------------------------------------

KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
KUSTOMIZE_VERSION = "v5.5.0"


def kustomize_bin(paths: Paths) -> Path:
    return paths.cache_bin / "kustomize"


def install_kustomize(paths: Paths, say: Printer = print) -> bool:
    """Build kustomize into ``.cache/bin/kustomize``; True if work was done."""
    stamp = paths.cache_bin / "kustomize.version"
    binary = kustomize_bin(paths)
    if binary.exists() and stamp.exists() and stamp.read_text().strip() == KUSTOMIZE_VERSION:
        say(f"kustomize: up to date ({KUSTOMIZE_VERSION})")
        return False
    go = find_go()
    env = go_env(paths)
    for key in ("GOPATH", "GOMODCACHE", "GOCACHE"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    paths.cache_bin.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    say(f"kustomize: building {KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION} (first run: ~2 minutes)")
    _run([go, "install", "-trimpath", f"{KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION}"], env=env)
    if not binary.exists():
        raise InstallError(f"go install finished but {binary} is missing")
    stamp.write_text(KUSTOMIZE_VERSION + "\n", encoding="utf-8")
    say(f"kustomize: built in {time.monotonic() - started:.0f}s -> {binary}")
    return True


PROMETHEUS_TOOLS = ("promtool", "prometheus")


def install_prometheus(say: Printer = print) -> bool:
    """Debian's ``prometheus`` package (promtool and the server) if either is missing."""
    if all(shutil.which(tool) for tool in PROMETHEUS_TOOLS):
        say("prometheus: present (promtool, prometheus)")
        return False
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise MissingToolError(
            "promtool/prometheus not found: install Debian's `prometheus` package "
            "(`sudo apt-get install prometheus`)"
        )
    say("prometheus: installing Debian's prometheus package with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    argv = [apt, "install", "-y", "-q", "--no-install-recommends", "prometheus"]
    try:
        _run(argv, env=env)
    except InstallError:  # stale or missing package lists: refresh once and retry
        _run([apt, "update", "-q"], env=env)
        _run(argv, env=env)
    missing = [tool for tool in PROMETHEUS_TOOLS if not shutil.which(tool)]
    if missing:
        raise InstallError(f"apt-get installed prometheus but {missing} are not on PATH")
    return True


# --------------------------------------------------------------------------
# Chromium (browser tests)
# --------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
Runner = Callable[[Sequence[str]], object]


def _apt(argv: Sequence[str]) -> object:
    return _run(argv, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def install_chromium(
    say: Printer = print,
    *,
    binary: Path = CHROMIUM,
    is_root: bool | None = None,
    run: Runner = _apt,
) -> bool:
    """Installs Debian's chromium when missing and running as root; True if it installed it."""
    if binary.exists():
        return False
    if is_root is None:
        is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if not is_root or shutil.which("apt-get") is None:
        say(f"chromium: {binary} is missing; the browser tests need `apt-get install chromium`")
        return False
    say("chromium: installing Debian's chromium for the browser tests (apt-get)")
    try:
        run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"])
    except InstallError:
        run(["apt-get", "update"])
        run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"])
    return True


def install(paths: Paths, say: Printer = print) -> bool:
    """Install everything; True if anything changed. Raises MissingToolError/InstallError."""
    paths.ensure()
    changed = install_kafka(paths, say)
    built = install_ferretdb(paths, say, prune=False)  # both Go builds share the caches
    built = install_kustomize(paths, say) or built
    if built and not os.environ.get(KEEP_GO_CACHE_ENV):
        prune_go_caches(paths, say)
    changed = install_prometheus(say) or built or changed
    changed = install_chromium(say) or changed
    return changed
