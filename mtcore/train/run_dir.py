"""The run directory and its event log.

::

    <run>/config.yaml        the resolved config (after overrides), its output_dir this folder: mt train <run>/config.yaml
                             --resume continues this run (wherever the folder is now: :func:`run_of_config`)
    <run>/metrics.jsonl      one JSON object per event: {"event": "train"|"eval"|"info", "step": ...}
    <run>/checkpoints/       full-state checkpoints (see mtcore.train.checkpoint)
    <run>/model/             the final model (MultitaskModel.from_pretrained loads it)
    <run>/summary.json       final and best metrics per task, steps, timings
    <run>/curves.png         loss per task and eval metrics against steps (needs matplotlib)

Only the main process writes here. On resume, events after the resumed step are dropped from
``metrics.jsonl`` (an ``interrupted`` event stays) so the log reads like the uninterrupted run's.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any

from mtcore.errors import ConfigError, MtError
from mtcore.outputs import naming, write_named


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf floats become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temporary file in the same directory, then rename)."""
    write_named(path, json.dumps(_clean(data), indent=2, ensure_ascii=False) + "\n")


def _same_folder(written: str | Path, root: str | Path) -> bool:
    """Whether the run folder named in a config.yaml header is ``root`` (a relative name from an
    older run, written from another folder, counts when its last part matches)."""
    path = Path(written).expanduser()
    try:
        if path.resolve() == Path(root).expanduser().resolve():
            return True
    except OSError:
        return False
    return not path.is_absolute() and path.name == Path(root).expanduser().absolute().name


def run_of_config(path: str | Path) -> Path | None:
    """The run folder that ``path`` is the own ``config.yaml`` of (its first line is :attr:`RunDir.CONFIG_HEADER` and
    the folder holds the run's ``checkpoints/``), as ``path`` names it; else None.

    ``mt train RUN/config.yaml`` without ``--output-dir`` goes to that folder, also after the folder was moved or
    copied (the ``output_dir`` written in the file names the folder it was written in)."""
    path = Path(path)
    if path.name != "config.yaml" or not (path.parent / "checkpoints").is_dir():
        return None
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            first = handle.readline()
    except OSError:
        return None
    return path.parent if first.startswith(RunDir.CONFIG_HEADER) else None


class RunDir:
    """Paths of one run and the rules for starting or resuming it."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.held_a_run = False  # whether a run's config.yaml was here when this start began (set by the start)

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def curves(self) -> Path:
        return self.root / "curves.png"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def has_run(self) -> bool:
        """True when a run already trained here (checkpoints, logged events, a model or a summary).

        A directory left by a run that failed while starting (bad data, no network) holds only
        its config: a fresh start may reuse it.
        """
        from mtcore.model.manifest import MANIFEST_NAME

        trained = self.checkpoints.is_dir() and any(self.checkpoints.iterdir())
        logged = self.metrics.is_file() and self.metrics.stat().st_size > 0
        return trained or logged or (self.model / MANIFEST_NAME).is_file() or self.summary.is_file()

    def check_model_folder(self) -> None:
        """Refuse, before any training, a ``model`` that mtcore did not write: the run saves its model there at the end, and
        would stop then (your own ``model/``, or a file of that name)."""
        from mtcore.model.manifest import MANIFEST_NAME

        model = self.model
        if model.is_symlink() and not model.exists():
            raise ConfigError(f"output directory {self.root}: its 'model' is a broken link, and the run writes its model there at "
                              "the end; remove the link, or choose another --output-dir")
        if not model.exists() or (model.is_dir() and ((model / MANIFEST_NAME).is_file() or not any(model.iterdir()))):
            return
        what = "a model/ folder that mtcore did not write (no mtcore.json)" if model.is_dir() else "a file named 'model'"
        raise ConfigError(f"output directory {self.root} holds {what}, where the run writes its model at the end (it would "
                          "stop there after training): move it away, or choose another --output-dir")

    def check_location(self, what: str = "output directory") -> None:
        """One line when the run directory cannot be made: it (or a folder above it) is a file, or no file can be written there."""
        from mtcore.outputs import check_writable

        if self.root.is_file():
            raise ConfigError(f"{what} {self.root} is a file; choose a folder")
        if (self.root / "seeds.json").is_file():  # the folder of `mt train --seeds`
            raise ConfigError(f"{what} {self.root} holds runs of several seeds (seeds.json); choose another folder, "
                              f"or use one of them ({self.root / 'seed-<seed>'})")
        if (self.root / "grid.json").is_file():  # the folder of `mt train --grid`
            raise ConfigError(f"{what} {self.root} holds the runs of a grid (grid.json); choose another folder, "
                              f"or use one of them ({self.root / '<key=value,...>'})")
        if self.root.name == "checkpoints" and any(self.root.glob("step-*/state.json")):  # a run's checkpoints folder
            run = self.root.parent
            raise ConfigError(f"{what} {self.root} holds the checkpoints of the run in {run}, not a run directory; to continue "
                              f"that run: mt train {run / 'config.yaml'} --resume; a new run needs a folder of its own")
        if (self.root / "state.json").is_file() and (self.root / "model.safetensors").is_file():  # the path a preemption prints
            run = self.root.parent.parent if self.root.parent.name == "checkpoints" else None
            held = run is not None and (run / "config.yaml").is_file()
            go_on = f"; to continue that run: mt train {run / 'config.yaml'} --resume" if held else ""
            raise ConfigError(f"{what} {self.root} is a checkpoint{f' of the run in {run}' if held else ''}, not a run directory"
                              f"{go_on}; a new run needs a folder of its own")
        check_writable(self.root, folder=True, what=what)
        self.check_model_folder()

    #: The first line of the config.yaml a run writes (anything else there is somebody's own file).
    CONFIG_HEADER = "# resolved config of this run"

    def check_config_is_ours(self, resume: bool = False) -> None:
        """Refuse a folder whose config.yaml mtcore did not write: it would be overwritten (``mt train config.yaml -o .``).

        With ``resume``, a run folder that was moved or copied (its config.yaml names the folder it was
        written in) is continued where it is now, with a warning naming where it came from."""
        try:
            with self.config.open(encoding="utf-8", errors="replace") as handle:
                first = handle.readline()
        except (FileNotFoundError, IsADirectoryError):
            return
        except OSError:
            first = ""
        written_for = first.split("--output-dir ", 1)[1].split(" --resume", 1)[0].strip() if "--output-dir " in first else None
        moved = written_for is not None and not _same_folder(written_for, self.root)
        if resume and moved and first.startswith(self.CONFIG_HEADER) and self.has_run():
            import warnings

            warnings.warn(f"the run in {str(self.root)!r} was started in {written_for!r} (moved or copied since): it continues "
                          "here, and its config.yaml is rewritten for this folder", UserWarning, stacklevel=2)
            return
        if not first.startswith(self.CONFIG_HEADER) or moved:
            raise ConfigError(f"output directory {str(self.root)!r} holds a config.yaml that no run wrote here (your own config, "
                              "or a copy of another run's?); the run would overwrite it with its resolved config: choose another "
                              "--output-dir")

    def check_new(self) -> None:
        """Refuse to start a fresh run over an existing one (or in a place no run directory can be)."""
        self.check_location()
        self.check_config_is_ours()
        if self.has_run() and self.summary.is_file():  # finished: --resume would train nothing
            raise ConfigError(f"output directory {str(self.root)!r} already holds a finished run (its summary.json): --resume keeps "
                              "it as it is (with --seeds or --grid, and trains the runs still missing); choose another --output-dir "
                              "(output_dir=) to train again")
        if self.has_run():
            raise ConfigError(
                f"output directory {str(self.root)!r} already holds a run; add --resume to continue it (Trainer(..., resume=True)), "
                "or choose another --output-dir (output_dir=)"
            )

    #: What a killed run can leave at the top of its folder: ``model/`` half-written (``save_model``'s staging folder, or the
    #: previous ``model/`` set aside), a JSON/JSONL/YAML/plot file or the demo encoder being written (``.tmp-``).
    TEMPORARY_PREFIXES = (".model.tmp-", ".model.old-", ".tmp-")

    def clean_temporary(self) -> list[str]:
        """Remove what a killed run left half-written at the top of the run folder (``--resume`` calls it; the
        checkpoints' own are :meth:`Checkpoints.clean_temporary`'s); returns the names removed."""
        import shutil

        removed = []
        if self.root.is_dir():
            for entry in sorted(self.root.iterdir()):
                if entry.name.startswith(self.TEMPORARY_PREFIXES):
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
                    removed.append(entry.name)
        return removed

    def make_root(self) -> None:
        """Create the run folder (and its parents) if missing; one line when it cannot be made."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MtError(f"cannot create the run directory {self.root}: {exc.strerror or exc}") from None

    def create(self) -> None:
        self.check_location()
        self.make_root()
        try:
            self.checkpoints.mkdir(exist_ok=True)
        except OSError as exc:
            raise MtError(f"cannot create the run directory {self.root}: {exc.strerror or exc}") from None


class StartGuard:
    """Undo what a run that failed while starting wrote: ``guard = StartGuard(root)`` before, ``guard.undo()`` after.

    Entries the start added to a folder that already existed are removed (an empty folder is left
    empty, files that were there stay, and a ``config.yaml`` rewritten for a moved run gets its old
    text back); a folder it made is removed, and so are the parent folders it made while they are empty.
    """

    def __init__(self, root: str | Path, made: list[Path] | None = None) -> None:
        self.root = Path(root)
        self.made = self.missing(self.root) if made is None else made  # ``made``: what was missing before the start made it
        if self.made and self.made[0] == self.root and self.root.is_dir():  # another process made it first and wrote there
            from mtcore.train.run_lock import LOCK_NAME

            if set(os.listdir(self.root)) - {LOCK_NAME}:
                self.made = []
        self.before = set(os.listdir(self.root)) if not self.made and self.root.is_dir() else None
        config = self.root / "config.yaml"
        try:
            self.config_text = config.read_bytes() if self.before is not None and config.is_file() else None
        except OSError:
            self.config_text = None

    @staticmethod
    def missing(root: Path) -> list[Path]:
        """``root`` and the folders above it that do not exist yet, deepest first."""
        return [p for p in (root, *root.parents) if not (p.exists() or p.is_symlink())]

    def undo(self) -> None:
        import shutil

        if self.config_text is not None:
            config = self.root / "config.yaml"
            try:
                if config.read_bytes() != self.config_text:
                    config.write_bytes(self.config_text)
            except OSError:
                pass
        if self.before is not None:
            for name in set(os.listdir(self.root)) - self.before if self.root.is_dir() else ():
                entry = self.root / name
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
            return
        if self.made and self.root.is_dir():
            shutil.rmtree(self.root, ignore_errors=True)
        for folder in self.made:  # deepest first
            try:
                folder.rmdir()
            except FileNotFoundError:
                continue
            except OSError:
                return


class MetricsLog:
    """Appends events to ``metrics.jsonl`` (one JSON object per line, flushed per event)."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled
        self._written = False  # by this process: a file gone since was deleted while the run trained

    def truncate_after(self, step: int, evaluated: bool = True) -> None:
        """Drop events logged after ``step`` (used when resuming from a checkpoint at ``step``), except ``interrupted``
        events: a Ctrl-C that stopped the run (after its last checkpoint) stays on record. ``evaluated`` false (the
        checkpoint was saved before its step's evaluation: the last step's, which the end of the run does) drops
        that step's ``eval`` event too, which the resumed run logs again."""
        if not self.enabled or not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():  # a cut may split a character
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill, a full disk
            at = int(event.get("step", 0))
            if (at < step or at == step and (evaluated or event.get("event") != "eval")) or event.get("event") == "interrupted":
                kept.append(line)
        write_named(self.path, "".join(line + "\n" for line in kept))

    def write(self, event: dict[str, Any]) -> None:
        """Append ``event``; a ``metrics.jsonl`` deleted while the run trains is begun again, with a warning (the events
        before are lost: ``mt compare`` and the curves show only what follows)."""
        if not self.enabled:
            return
        if self._written and not self.path.exists() and self.path.parent.is_dir():
            import warnings

            warnings.warn(f"{self.path} was deleted while the run trained; a new one begins at step {event.get('step')} "
                          "(the events before it are lost)", stacklevel=2)
        line = (json.dumps(_clean(event), ensure_ascii=False) + "\n").encode("utf-8")
        try:
            with self.path.open("ab", buffering=0) as handle:  # unbuffered: truncate() below flushes nothing first
                end = handle.seek(0, os.SEEK_END)
                try:
                    while line:
                        line = line[handle.write(line):]  # a write may take part of the line before the error
                except OSError:  # a full disk, the file-size limit: no half line is left for the next reader
                    with contextlib.suppress(OSError):
                        handle.truncate(end)
                    raise
        except OSError as exc:
            raise naming(exc, self.path) from exc
        self._written = True


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every complete event of a ``metrics.jsonl`` file."""
    events = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():  # a cut line: skipped below
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return events
