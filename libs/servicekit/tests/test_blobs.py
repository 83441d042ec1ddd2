"""Documents stored as one binary (`servicekit.blobs`): they read back as written (times as
aware datetimes, in milliseconds as the store keeps them), take a fraction of their BSON
size, and plain binaries of uncompressed BSON (written before compression) read the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import bson
import pytest
from bson.binary import Binary

from servicekit.blobs import COMPRESSED, pack_document, unpack_document

pytestmark = pytest.mark.unit
T0 = datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)


def views(n: int) -> dict[str, object]:
    return {
        f"j{i}": {"status": "completed", "attempt": 1, "started_at": T0 + timedelta(seconds=i)}
        for i in range(n)
    }


def test_a_document_reads_back_as_written_from_a_fraction_of_its_bytes() -> None:
    doc = views(100)
    stored = pack_document(doc)
    assert stored.subtype == COMPRESSED
    assert len(stored) < len(bson.encode(doc)) / 4
    back = unpack_document(stored)
    assert list(back) == list(doc)
    assert back["j7"]["started_at"] == T0.replace(microsecond=123000) + timedelta(seconds=7)
    assert back["j7"]["started_at"].utcoffset() == timedelta(0)


def test_uncompressed_bson_in_a_plain_binary_reads_the_same() -> None:
    doc = views(3)
    plain = bson.encode(doc)  # a plain binary reads back from the store as bytes
    assert unpack_document(plain) == unpack_document(pack_document(doc))


def test_anything_else_is_refused() -> None:
    with pytest.raises(TypeError, match="not a stored document"):
        unpack_document({"j0": {}})
    with pytest.raises(TypeError):
        unpack_document(Binary(b"\x00", 4))  # a UUID, say
