"""Reading a data file's bytes and lines: compressed files (``.gz``, ``.bz2``, ``.xz``), encodings (a UTF-8
byte-order mark dropped; UTF-16/32 decoded before lines are split), and one-line DataErrors for bad bytes and
damaged files. :mod:`mtcore.data.readers` turns the lines into rows."""

from __future__ import annotations

import bz2
import codecs
import gzip
import lzma
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from mtcore.errors import ConfigError, DataError

_COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _open_binary(path: Path) -> IO[bytes]:
    opener = _COMPRESSED.get(path.suffix.lower(), open)
    try:
        return opener(path, "rb")
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def _decode_error(path: Path, line: int, exc: UnicodeDecodeError, encoding: str) -> DataError:
    bad = exc.object[exc.start:exc.start + 1].hex()
    return DataError(f"{path} row {line}: byte 0x{bad} at column {exc.start + 1} is not valid {encoding} text; "
                     f"save the file as UTF-8 or set the reader option encoding= to its real encoding")


def _bom_tolerant(path: Path, encoding: str) -> str:
    """``utf-8`` in any spelling reads as ``utf-8-sig``: an invisible byte-order mark must not stick to the first field."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise ConfigError(f"{path}: unknown encoding {encoding!r}") from None
    return "utf-8-sig" if name == "utf-8" else encoding


#: What reading a damaged file raises: OSError/EOFError (gzip's, bz2's, a truncated stream), lzma's and zlib's own.
READ_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, lzma.LZMAError, zlib.error)


def text_lines(path: str | Path, encoding: str = "utf-8-sig") -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` with line endings kept; bad bytes raise a DataError naming the line. UTF-16 and
    UTF-32 (Excel's "Unicode Text") are decoded before lines are split: their newline is more than the byte 0x0A."""
    path = Path(path)
    encoding = _bom_tolerant(path, encoding)
    wide = codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
    decoder = codecs.getincrementaldecoder(encoding)()
    number = 0
    with _open_binary(path) as handle:
        try:
            if wide:
                yield from _wide_lines(path, handle, encoding)
                return
            for number, raw in enumerate(handle, start=1):
                try:
                    yield number, decoder.decode(raw)
                except UnicodeDecodeError as exc:
                    raise _decode_error(path, number, exc, encoding) from None
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as exc:  # the file ends inside a multi-byte character
                raise _decode_error(path, number, exc, encoding) from None
        except READ_ERRORS as exc:
            raise DataError(f"{path} row {number + 1}: cannot read the file ({exc})") from None


def _wide_lines(path: Path, handle: IO[bytes], encoding: str) -> Iterator[tuple[int, str]]:
    import io

    number = 0
    try:
        for number, line in enumerate(io.TextIOWrapper(handle, encoding=encoding, newline=""), start=1):
            yield number, line.removeprefix("\ufeff") if number == 1 else line  # utf-16-le keeps the mark as text
    except UnicodeDecodeError as exc:
        raise _decode_error(path, number + 1, exc, encoding) from None
