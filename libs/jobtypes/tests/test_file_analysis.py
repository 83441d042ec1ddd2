"""`files.extract_metadata`'s pure part: media sniffing, encodings, line/word/char counts,
fed in chunks of every size so counts across chunk boundaries are covered."""

from __future__ import annotations

import codecs
import hashlib
import os

import pytest

from jobtypes.files.analysis import FileAnalysis, FileFacts, sniff_magic, type_from_name

pytestmark = pytest.mark.unit

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)


def analyse(data: bytes, filename: str = "f", step: int = 7) -> FileFacts:
    analysis = FileAnalysis()
    for start in range(0, len(data), step):
        analysis.feed(data[start : start + step])
    return analysis.finish(filename)


@pytest.mark.parametrize("step", [1, 3, 7, 512, 100_000])
def test_text_counts_do_not_depend_on_chunking(step: int) -> None:
    text = "héllo wörld\nsecond  line\twith tabs\n\nlast line without end"
    facts = analyse(text.encode(), "notes.txt", step)
    assert (facts.lines, facts.words, facts.chars) == (4, 10, len(text))
    assert facts.encoding == "utf-8"
    assert facts.is_text
    assert facts.media_type == "text/plain"
    assert facts.sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert facts.size == len(text.encode())


def test_ascii_crlf_and_a_final_newline() -> None:
    facts = analyse(b"one two\r\nthree\r\n", "a.csv")
    assert (facts.lines, facts.words, facts.encoding) == (2, 3, "ascii")
    assert facts.media_type == "text/csv"
    assert facts.media_type_source == "filename"


def test_empty_file_is_empty_text() -> None:
    facts = analyse(b"", "empty.txt")
    assert (facts.size, facts.lines, facts.words, facts.chars) == (0, 0, 0, 0)
    assert facts.sha256 == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize(
    ("bom", "codec", "name"),
    [
        (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16-be"),
        (codecs.BOM_UTF8, "utf-8", "utf-8-sig"),
    ],
)
def test_byte_order_marks(bom: bytes, codec: str, name: str) -> None:
    text = "Grüße aus\nBerlin und €uro\n"
    facts = analyse(bom + text.encode(codec), "x.txt", step=5)
    assert facts.encoding == name
    assert (facts.lines, facts.words, facts.chars) == (2, 5, len(text))
    assert facts.is_text


def test_invalid_utf8_falls_back_to_latin1() -> None:
    data = "café au lait\n".encode("latin-1") * 3
    facts = analyse(data, "menu.txt")
    assert facts.encoding == "latin-1"
    assert (facts.lines, facts.words, facts.chars) == (3, 9, len(data))


def test_binary_is_not_text_and_magic_wins_over_the_name() -> None:
    facts = analyse(PNG, "holiday.txt", step=100)
    assert facts.media_type == "image/png"
    assert facts.media_type_source == "content"
    assert not facts.is_text
    assert facts.encoding is None
    assert facts.lines is None
    noise = analyse(bytes(range(256)) * 20, "blob")
    assert noise.media_type == "application/octet-stream"
    assert not noise.is_text


def test_zip_based_office_files_keep_their_name_type() -> None:
    facts = analyse(b"PK\x03\x04" + bytes(600), "report.docx")
    assert facts.media_type.endswith("wordprocessingml.document")
    assert analyse(b"PK\x03\x04" + bytes(600), "a.bin").media_type == "application/zip"


def test_markup_sniffed_when_the_name_says_nothing() -> None:
    assert analyse(b'<?xml version="1.0"?><a/>', "data").media_type == "application/xml"
    assert analyse(b"<!DOCTYPE html><p>hi</p>", "page").media_type == "text/html"
    assert analyse(b'{"a": 1}', "x.json").media_type == "application/json"


def test_magic_and_names() -> None:
    assert sniff_magic(b"%PDF-1.7 ...") == "application/pdf"
    assert sniff_magic(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_magic(bytes(257) + b"ustar") == "application/x-tar"
    assert sniff_magic(b"hello") is None
    assert type_from_name("README.md") == "text/markdown"
    assert type_from_name("photo.JPG") == "image/jpeg"
    assert type_from_name("no-extension") is None
