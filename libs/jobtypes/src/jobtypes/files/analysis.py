"""What `files.extract_metadata` finds in a file's bytes, fed chunk by chunk (pure; no I/O).

- **Media type**: magic bytes of common formats first (`MAGIC`, checked on the first bytes),
  then the filename's extension (the standard library's built-in table, not the machine's
  `/etc/mime.types`, plus a few it lacks), then `text/plain` for text and
  `application/octet-stream` for anything else. `media_type_source` says which decided.
- **Text or binary**: a file whose first bytes are a UTF-16 byte-order mark is text if it
  decodes as UTF-16. Otherwise it is text if it holds no NUL byte, at most 1% of its bytes are
  C0 control characters other than tab, line feed, form feed, carriage return, backspace and
  escape (and DEL), and no magic number says otherwise.
- **Encoding** (of text): `utf-16-le` / `utf-16-be` (only with a BOM), `utf-8-sig` (UTF-8
  with a BOM), `ascii` (bytes below 0x80 only), `utf-8` (valid UTF-8 with other characters),
  else `latin-1`: any byte sequence decodes as ISO-8859-1, so that is the fallback, not a
  detection (a cp1252 or Shift-JIS file is reported as latin-1 and its counts are those of
  its latin-1 reading).
- **Lines**: line feeds, plus one for a last line without one (so `a\\nb` has 2 lines, like
  an editor; `wc -l` says 1); `\\r\\n` is one line end; a lone `\\r` is not one.
- **Words**: maximal runs of characters that are not whitespace (Python's `str.split()`,
  Unicode whitespace included).
- **Characters**: code points after decoding, without a BOM."""

from __future__ import annotations

import codecs
import hashlib
import mimetypes
from dataclasses import dataclass

# (offset, bytes, media type), checked in order on the first bytes
MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"PK\x05\x06", "application/zip"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"BZh", "application/x-bzip2"),
    (0, b"\xfd7zXZ\x00", "application/x-xz"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"\x28\xb5\x2f\xfd", "application/zstd"),
    (0, b"\x7fELF", "application/x-executable"),
    (0, b"\x00asm", "application/wasm"),
    (0, b"SQLite format 3\x00", "application/vnd.sqlite3"),
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"\x00\x00\x01\x00", "image/vnd.microsoft.icon"),
    (0, b"%!PS", "application/postscript"),
    (0, b"{\\rtf", "application/rtf"),
    (4, b"ftyp", "video/mp4"),
    (257, b"ustar", "application/x-tar"),
)
# RIFF containers name their format at offset 8
RIFF = {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}
# zip-based formats the extension refines (the magic only says "zip")
ZIP_BASED = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/java-archive",
    "application/epub+zip",
}
EXTRA_TYPES = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".toml": "application/toml",
    ".log": "text/plain",
    ".ndjson": "application/x-ndjson",
    ".jsonl": "application/x-ndjson",
    ".ts": "text/x-typescript",
    ".rs": "text/x-rust",
    ".go": "text/x-go",
    ".webp": "image/webp",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".jar": "application/java-archive",
    ".epub": "application/epub+zip",
    ".zst": "application/zstd",
    ".7z": "application/x-7z-compressed",
}
HEAD_BYTES = 512
MAX_CONTROL_SHARE = 0.01
# C0 controls that plain text does not use (tab, LF, FF, CR, backspace and ESC are allowed)
_CONTROL = bytes(b for b in range(32) if b not in (8, 9, 10, 12, 13, 27)) + b"\x7f"
_BUILTIN_TYPES = mimetypes.MimeTypes()  # the built-in table only: the same on every host


def sniff_magic(head: bytes) -> str | None:
    """The media type the first bytes announce, or None."""
    for offset, magic, media in MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return media
    if head[:4] == b"RIFF" and head[8:12] in RIFF:
        return RIFF[head[8:12]]
    return None


def type_from_name(filename: str) -> str | None:
    """The media type the filename's extension suggests, or None."""
    lowered = filename.lower()
    dot = lowered.rfind(".")
    if dot >= 0 and lowered[dot:] in EXTRA_TYPES:
        return EXTRA_TYPES[lowered[dot:]]
    guessed, encoding = _BUILTIN_TYPES.guess_type(lowered, strict=False)
    if encoding == "gzip":
        return "application/gzip"
    return guessed


def sniff_text_type(head: bytes) -> str | None:
    """A markup type the first bytes of a text show (after a BOM and leading space)."""
    start = head.lstrip(b"\xef\xbb\xbf").lstrip().lower()
    if start.startswith(b"<?xml"):
        return "application/xml"
    if start.startswith((b"<!doctype html", b"<html")):
        return "text/html"
    return None


def is_textual(media_type: str) -> bool:
    return media_type.startswith("text/") or media_type in {
        "application/json",
        "application/xml",
        "application/yaml",
        "application/toml",
        "application/x-ndjson",
        "application/javascript",
        "application/x-sh",
        "image/svg+xml",
    }


def decide_media_type(head: bytes, filename: str, is_text: bool) -> tuple[str, str]:
    """(media type, source): source is `content`, `filename` or `default`."""
    magic = sniff_magic(head)
    by_name = type_from_name(filename)
    if magic is not None:
        if magic == "application/zip" and by_name in ZIP_BASED:
            return by_name, "filename"
        return magic, "content"
    if is_text:
        markup = sniff_text_type(head)
        if by_name is not None and is_textual(by_name):
            return by_name, "filename"
        if markup is not None:
            return markup, "content"
        return "text/plain", "default"
    if by_name is not None and not is_textual(by_name):
        return by_name, "filename"
    return "application/octet-stream", "default"


@dataclass
class _TextCount:
    """Line, word and character counts of one candidate decoding, fed piece by piece."""

    encoding: str
    decoder: codecs.IncrementalDecoder
    lines: int = 0
    words: int = 0
    chars: int = 0
    last: str = ""
    failed: bool = False

    def feed(self, data: bytes, final: bool = False) -> None:
        if self.failed:
            return
        try:
            text = self.decoder.decode(data, final)
        except UnicodeDecodeError:
            self.failed = True
            return
        if not text:
            return
        if self.chars == 0 and text[0] == "\ufeff" and self.encoding != "latin-1":
            text = text[1:]
            if not text:
                return
        self.lines += text.count("\n")
        words = len(text.split())
        if words and self.last and not self.last.isspace() and not text[0].isspace():
            words -= 1  # a word that continues across the chunk boundary
        self.words += words
        self.chars += len(text)
        self.last = text[-1]

    def line_count(self) -> int:
        return self.lines + (1 if self.chars and self.last != "\n" else 0)


@dataclass(frozen=True)
class FileFacts:
    size: int
    sha256: str
    media_type: str
    media_type_source: str
    is_text: bool
    encoding: str | None
    lines: int | None
    words: int | None
    chars: int | None


class FileAnalysis:
    """Feed a file's bytes in order with `feed`, then `finish(filename)`. Holds at most
    `HEAD_BYTES` of the file plus the decoders' few pending bytes."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0
        self.head = b""
        self.nul = False
        self.controls = 0
        self.high = False
        self._pending = b""
        self._counts: list[_TextCount] | None = None

    def _start(self) -> list[_TextCount]:
        """Chooses the candidate decodings once the first bytes are known."""
        head = self.head
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            name = "utf-16-le" if head.startswith(codecs.BOM_UTF16_LE) else "utf-16-be"
            return [_TextCount(name, codecs.getincrementaldecoder("utf-16")())]
        utf8 = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
        return [
            _TextCount(utf8, codecs.getincrementaldecoder("utf-8")()),
            _TextCount("latin-1", codecs.getincrementaldecoder("latin-1")()),
        ]

    def feed(self, data: bytes) -> None:
        if not data:
            return
        self.sha.update(data)
        self.size += len(data)
        if len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - len(self.head)]
        if self._counts is None:  # the decodings are chosen once the first bytes are known
            self._pending += data
            if len(self._pending) < HEAD_BYTES:
                return
            data, self._pending = self._pending, b""
            self._counts = self._start()
        self._scan(data)

    def _scan(self, data: bytes) -> None:
        assert self._counts is not None
        self.nul = self.nul or b"\x00" in data
        self.controls += len(data) - len(data.translate(None, _CONTROL))
        self.high = self.high or any(b >= 0x80 for b in data)
        for count in self._counts:
            count.feed(data)

    def finish(self, filename: str) -> FileFacts:
        if self._counts is None:
            self._counts = self._start()
            self._scan(self._pending)
            self._pending = b""
        for count in self._counts:
            count.feed(b"", final=True)
        chosen = self._chosen()
        magic = sniff_magic(self.head)
        is_text = chosen is not None and magic is None
        media_type, source = decide_media_type(self.head, filename, is_text)
        encoding = None
        if is_text and chosen is not None:
            encoding = chosen.encoding
            if encoding == "utf-8" and not self.high:
                encoding = "ascii"
        return FileFacts(
            size=self.size,
            sha256=self.sha.hexdigest(),
            media_type=media_type,
            media_type_source=source,
            is_text=is_text,
            encoding=encoding,
            lines=chosen.line_count() if is_text and chosen else None,
            words=chosen.words if is_text and chosen else None,
            chars=chosen.chars if is_text and chosen else None,
        )

    def _chosen(self) -> _TextCount | None:
        """The first candidate decoding that held, if the bytes look like text at all."""
        assert self._counts is not None
        candidates = [c for c in self._counts if not c.failed]
        if not candidates:
            return None
        if candidates[0].encoding.startswith("utf-16"):
            return candidates[0]
        if self.nul or self.controls > MAX_CONTROL_SHARE * self.size:
            return None
        return candidates[0]
