"""Where mtcore writes its outputs (run directories, predictions, exports): checks made before
any work, so that an unusable path is one line and not a failure after minutes of computing,
and the folders an atomic write creates, removed again when it fails.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from mtcore.errors import MtError, OutputError, UsageError


def make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the folders created, deepest first."""
    missing = [p for p in (folder, *folder.parents) if not (p.exists() or p.is_symlink())]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except BaseException:
        remove_empty(missing)
        raise
    return missing


def remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) while they are empty: undo :func:`make_parents`."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _reason(exc: OSError) -> str:
    return exc.strerror or " ".join(str(exc).split())


def check_writable(path: str | os.PathLike[str], *, folder: bool = False, what: str = "--output", example: str = "predictions.jsonl") -> None:
    """Refuse an output path that cannot be written, before any work, in one line.

    ``path`` is a file (``folder=False``: an existing folder there is refused; a FIFO or a device such as
    ``/dev/stdout`` is written directly) or a folder (a FIFO or device refused). The
    nearest existing folder on the way must be a folder and must take a file (tried with an empty
    temporary file, removed at once): a :class:`UsageError` or :class:`MtError` otherwise.
    """
    target = Path(path).expanduser()
    if target.is_symlink() and target.exists() and not target.is_file() and not target.is_dir():
        pass  # /dev/stdout on a pipe: a "magic" link to pipe:[N], a name that resolves nowhere, yet the pipe is there
    elif target.is_symlink():
        resolved = target.resolve()  # written through: its target is what must be writable
        if not resolved.exists() and (folder or not resolved.parent.is_dir()):  # nothing there to write into
            raise UsageError(_broken_link(what, path, target))
        target = resolved
    if target.exists() and not target.is_file() and not target.is_dir():  # a FIFO or a device: written directly
        if folder:
            raise UsageError(f"{what} {path} is a device or pipe, not a folder; this output is a folder: choose a folder path")
        if not os.access(target, os.W_OK):
            raise MtError(f"cannot write to {path}: permission denied")
        return
    if not folder and (target.is_dir() or str(path).endswith(("/", os.sep))):  # "preds/": meant as a folder
        raise UsageError(f"{what} {path} is a folder; give a file path (e.g. {Path(path) / example})")
    if folder and target.is_file():
        raise UsageError(f"{what} {path} is a file; this output is a folder: choose a folder path")
    start = target if folder else target.parent
    existing = next((p for p in (start, *start.parents) if p.exists() or p.is_symlink()), Path("."))
    if existing.is_symlink() and not existing.exists():
        raise UsageError(_broken_link(what, path, existing))
    if not existing.is_dir():
        raise UsageError(f"{what} {path}: {existing} is a file, not a folder; choose another path")
    try:
        fd, probe = tempfile.mkstemp(prefix=".mt-write-test-", dir=existing)
    except OSError as exc:  # name what was asked for, and the folder that refused a new file there
        where = "" if existing == target else f" (folder {existing} takes no new file)"
        raise MtError(f"cannot write to {path}: {_reason(exc)}{where}; choose another {what}") from None
    os.close(fd)
    Path(probe).unlink(missing_ok=True)


def _broken_link(what: str, path: Any, link: Path) -> str:
    """``--output X: X is a broken link (to '/mnt/gone', which does not exist); ...``: not "a file", not "File exists"."""
    return (f"{what} {path}: {link} is a broken link (to {os.readlink(link)!r}, which does not exist); fix the link (a drive "
            "not mounted?) or choose another path")


def write_error(path: str | os.PathLike[str], exc: Exception) -> OutputError:
    """The one-line error for an output that failed while being written (an OSError, or safetensors'
    own error for the same causes: a full disk, a folder that went away)."""
    if isinstance(exc, OSError):
        reason = _reason(exc)
    else:  # safetensors: 'Error while serializing: IoError(Os { code: 28, ..., message: "No space left on device" })'
        text = " ".join(str(exc).split())  # or (newer) 'Error while serializing: I/O error: File too large (os error 27)'
        found = re.search(r'message: "([^"]+)"', text) or re.search(r"I/O error: (.+?) \(os error \d+\)", text)
        reason = found.group(1) if found else text
    return OutputError(f"cannot write to {path}: {reason}", errno=error_number(exc))


def error_number(exc: BaseException) -> int | None:
    """The errno of a failed write: an OSError's own, or the one in safetensors' text (``IoError(Os { code: 28, ...``,
    ``I/O error: File too large (os error 27)``)."""
    if isinstance(exc, OSError):
        return exc.errno
    found = re.search(r"\bcode: (\d+)|\(os error (\d+)\)", str(exc))
    return int(found.group(1) or found.group(2)) if found else None


def write_fix(code: int | None, place: str | os.PathLike[str]) -> str:
    """What to do about a write into ``place`` (a folder) that failed with error number ``code``: a full disk or
    quota, the file-size limit (``ulimit -f``: EFBIG), no permission or a read-only file system; "" for another cause."""
    import errno

    if code in {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}:
        return f"free some space on the disk of {place}"
    if code == errno.EFBIG:
        return "a file outgrew this process's file-size limit: raise it (ulimit -f) or write elsewhere"
    if code in {errno.EACCES, errno.EPERM, errno.EROFS}:
        return f"make {place} writable"
    return ""


class AtomicText:
    """A text file written under a temporary name beside ``path`` and renamed onto it only by
    :meth:`commit`, so that a failure half-way (an error, Ctrl-C, a full disk) leaves no file and no
    temporary file: :meth:`discard` removes what was written, and the folders :meth:`open` made.

    A symbolic link is written through (its target is replaced, the link stays); a FIFO or a
    device (``/dev/stdout``) is written to directly, never replaced by a file. The file gets the
    modes ``open()`` gives. As a context manager: open on entry, commit on a clean exit, discard
    otherwise.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        path = Path(path)
        self.direct = path.exists() and not path.is_file() and not path.is_dir()  # through a link: /dev/stdout on a pipe
        self.path = path.resolve() if path.is_symlink() and not self.direct else path  # (resolves to pipe:[N], no name)
        self.handle: TextIO | None = None
        self._tmp: str | None = None
        self._created: list[Path] = []

    def open(self) -> TextIO:
        if self.direct:
            self.handle = open(self.path, "w", encoding="utf-8", newline="")
            return self.handle
        self._created = make_parents(self.path.parent)
        try:
            fd = self._create_temporary()
            self.handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
        except BaseException:
            self.discard()
            raise
        return self.handle

    def _create_temporary(self) -> int:
        """Create ``.tmp-<random><suffix>`` beside the target, as ``tempfile.mkstemp`` does, but note its name
        *before* creating it: a SIGTERM or Ctrl-C between the two (a signal handler runs between any two
        statements, whichever thread received it) cannot leave a file :meth:`discard` does not know of."""
        import secrets

        for _ in range(100):
            self._tmp = str(self.path.parent / f".tmp-{secrets.token_hex(6)}{self.path.suffix}")
            try:
                return os.open(self._tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
        raise FileExistsError(f"{self.path.parent}: no free temporary name beside {self.path.name}")

    def commit(self) -> None:
        """Close the file and move it into place (on failure: :meth:`discard`, and the error raised)."""
        try:
            if self.handle is not None:
                self.handle.close()
            if self._tmp is not None:
                share_modes(self._tmp)
                os.replace(self._tmp, self.path)
                self._tmp = None
        except BaseException:
            self.discard()
            raise
        self._created = []

    def discard(self) -> None:
        """Remove the temporary file and the folders made for it (nothing to do once committed)."""
        if self.handle is not None:
            try:
                self.handle.close()
            except OSError:  # a full disk refuses the last flush too
                pass
        if self._tmp is not None:
            Path(self._tmp).unlink(missing_ok=True)
            self._tmp = None
        remove_empty(self._created)
        self._created = []

    def __enter__(self) -> TextIO:
        return self.open()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it; nothing is left on failure
    (:class:`AtomicText`: links written through, FIFOs and devices written directly, missing parent
    folders created and removed again on failure, the modes ``open()`` gives). Plugins' prediction
    writers use it too.
    """
    with AtomicText(path) as handle:
        handle.write(text)


def _utf8(stream: Any) -> bool:
    return (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "") == "utf8"


@contextlib.contextmanager
def data_stdout() -> Iterator[TextIO]:
    """Standard output for data (predictions, ``--json``): UTF-8, as the files mt writes are, whatever the terminal's
    encoding (``PYTHONIOENCODING=ascii``, a latin-1 locale, a redirected Windows console): ``mt predict ... > out.jsonl``
    writes the bytes ``-o out.jsonl`` would."""
    stream = sys.stdout
    if _utf8(stream) or not hasattr(stream, "buffer"):
        yield stream
        return
    stream.flush()
    wrapper = io.TextIOWrapper(stream.buffer, encoding="utf-8", write_through=True)
    try:
        yield wrapper
    finally:
        try:
            wrapper.flush()
        finally:
            wrapper.detach()  # sys.stdout's buffer stays open


def tolerant_display() -> None:
    """Let standard output and error escape a character their encoding lacks (``\\u0439``) instead of stopping the
    command with a UnicodeEncodeError: a task name or path in Cyrillic on an ASCII or latin-1 terminal."""
    for stream in (sys.stdout, sys.stderr):
        if not _utf8(stream) and hasattr(stream, "reconfigure"):
            with contextlib.suppress(Exception):  # a replaced stream (a test's, an IDE's) keeps its own rule
                stream.reconfigure(errors="backslashreplace")


def naming(exc: OSError, path: str | os.PathLike[str]) -> OSError:
    """``exc`` as raised by writing ``path``: a full disk, a quota or the file-size limit hit by ``write()`` (no file
    name), or a rename of a temporary file onto it, then names ``path`` itself, the file the user knows."""
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def write_named(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` (whose folder must exist: a run folder deleted while it
    trains is not made again), then rename it; nothing is left on failure, and the OSError names ``path`` itself (a
    full disk names no file; a failed rename, the temporary one): a run's ``config.yaml`` and ``summary.json``."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        raise naming(exc, path) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        share_modes(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise naming(exc, path) from exc
        raise


def write_failures() -> tuple[type[BaseException], ...]:
    """The exceptions a failed write of weights can raise: OSError and safetensors' SafetensorError."""
    try:
        from safetensors import SafetensorError
    except ImportError:  # pragma: no cover - safetensors is a dependency
        return (OSError,)
    return (OSError, SafetensorError)


def share_modes(path: str | os.PathLike[str]) -> None:
    """Give ``path`` (a file, or a folder and everything in it) the modes plain ``open()`` and
    ``mkdir()`` would have given: 0666 / 0777 minus the umask. ``tempfile.mkstemp``, ``mkdtemp``
    and safetensors create private files (0600 / 0700), which other users and serving accounts
    could not read once renamed into place."""
    mask = os.umask(0)
    os.umask(mask)
    root = Path(path)
    for item in [root, *(root.rglob("*") if root.is_dir() and not root.is_symlink() else ())]:
        if not item.is_symlink():
            os.chmod(item, (0o777 if item.is_dir() else 0o666) & ~mask)
