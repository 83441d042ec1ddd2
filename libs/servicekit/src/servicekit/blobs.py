"""Documents the store keeps as one opaque value: BSON, compressed, in one binary field.

Why: the local store (FerretDB v1) converts every field of a document it writes or reads,
and a value's bytes cost it again when stored (as text in SQLite). The services' per-job
records written at job rate (the reporter's job view buckets, the scheduler's job state
changes) are many small fields that no query looks inside, so each is stored as one binary:
the document as BSON, zlib-compressed at level 1 (a bucket of 100 completed job views,
18.0 KB of BSON, takes 2.3 KB and 36 µs to compress; docs/performance.md, "Job views and job
state changes in one binary field"). They read back with the store client's own types (aware
datetimes).

Stored as binary subtype 0x80 (user-defined); a plain binary (subtype 0, read back as
`bytes`) holds uncompressed BSON, as written before compression, and reads the same."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import bson
from bson.binary import Binary
from bson.codec_options import CodecOptions

COMPRESSED = 0x80  # binary subtype: zlib-compressed BSON
_LEVEL = 1  # the fastest: most of the size goes at once, the rest costs more CPU than bytes
_AWARE: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True)  # as the services' clients


def pack_document(doc: Mapping[str, Any]) -> Binary:
    """`doc` as the value of a binary field: BSON, compressed."""
    return Binary(zlib.compress(bson.encode(doc), _LEVEL), COMPRESSED)


def unpack_document(value: Any) -> dict[str, Any]:
    """The document `pack_document` stored (or uncompressed BSON in a plain binary)."""
    if isinstance(value, Binary) and value.subtype not in (COMPRESSED, 0):
        raise TypeError(f"not a stored document: binary subtype {value.subtype}")
    if isinstance(value, Binary) and value.subtype == COMPRESSED:
        data = zlib.decompress(value)
    elif isinstance(value, bytes | bytearray):  # `Binary` is `bytes` too
        data = bytes(value)
    else:
        raise TypeError(f"not a stored document: {type(value).__name__}")
    return bson.decode(data, codec_options=_AWARE)
