"""The one-line FerretDB patch the installer applies before building (lookups by `_id` use
the `_id` index): applied once, a build stamped without it is built again, and a source tree
where the line is missing stops the install with a clear error instead of building an
unpatched store."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack import install
from devstack.paths import Paths

pytestmark = pytest.mark.unit
RELATIVE, BEFORE, AFTER = install.FERRETDB_PATCH


def tree(tmp_path: Path, text: str) -> Path:
    path = tmp_path / RELATIVE
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_id_expression_is_replaced_by_the_indexed_one(tmp_path: Path) -> None:
    source = f"const (\n\t{BEFORE}\n\tRecordIDColumn = x\n)\n"
    path = tree(tmp_path, source)
    install.patch_ferretdb(tmp_path)
    assert path.read_text(encoding="utf-8") == source.replace(BEFORE, AFTER)
    assert "->'_id'" in AFTER
    assert "$." not in AFTER


def test_a_source_without_the_line_stops_the_install(tmp_path: Path) -> None:
    tree(tmp_path, "const IDColumn = something_else\n")
    with pytest.raises(install.InstallError, match="not there once"):
        install.patch_ferretdb(tmp_path)


def test_a_build_without_the_patch_is_not_up_to_date(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    paths.cache_bin.mkdir(parents=True)
    paths.ferretdb_bin.write_text("binary")
    stamp = paths.cache_bin / "ferretdb.version"
    stamp.write_text("v1.24.2\n")
    assert install.ferretdb_installed(paths) is None
    stamp.write_text(f"v1.24.2 {install.FERRETDB_PATCH_NAME}\n")
    assert install.ferretdb_installed(paths) == "v1.24.2"
