"""The ``mt`` application: command registration and error handling.

Every :class:`mtcore.errors.MtError` becomes one line on stderr and the error's exit code
(1 runtime, 2 usage/config). Unexpected exceptions print one line too, unless ``MT_DEBUG=1``
asks for the traceback. Python warnings raised while a command runs (a plugin that failed to
load, examples over the token budget, library deprecations) print as one ``warning:`` line.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
import warnings
from typing import Any

import typer
from typer.core import TyperGroup

try:  # typer >= 0.2x ships its own copy of click
    from typer._click import exceptions as _click_exceptions
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as _click_exceptions

from mtcore import __version__
from mtcore.error_origin import unexpected_line
from mtcore.errors import MtError


def debug_mode() -> bool:
    return os.environ.get("MT_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


def fail(message: str, code: int = 1) -> None:
    """Print one error line to stderr and exit with ``code``."""
    from mtcore.cli.output import not_repeated

    print(f"error: {not_repeated(message)}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


def _classes(name: str) -> tuple[type, ...]:
    """``name`` from click's exceptions and typer's (typer >= 0.2x keeps Abort and Exit in its own module)."""
    found = (getattr(module, name, None) for module in (_click_exceptions, typer))
    return tuple(dict.fromkeys(c for c in found if isinstance(c, type)))


# Exceptions the CLI framework handles itself (usage errors exit 2, --help/--version exit 0).
_PASS_THROUGH = _classes("ClickException") + _classes("Exit") + _classes("Abort")
_ABORT = _classes("Abort")


def _shortened(path: Any, keep: int = 60) -> str:
    """A long path as ``start...end`` (``keep`` characters of each), so that its error stays one readable line."""
    text = os.fsdecode(path)
    return text if len(text) <= 2 * keep + 3 else f"{text[:keep]}...{text[-keep:]}"


def _stdout_closed() -> None:
    """The reader of our output went away (``mt list-tasks | head``): stop quietly, as on SIGPIPE."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing more reaches the closed pipe, not even at exit
    except (OSError, ValueError):
        pass
    sys.exit(141)


def _one_line_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    from mtcore.cli.output import warn

    warn(" ".join(str(message).split()))


def _terminated(signum: int, frame: Any) -> None:
    """SIGTERM / SIGHUP (``kill``, ``timeout``, a scheduler, a closed terminal) stop a command as Ctrl-C does:
    through its cleanup, so no temporary or half-written file stays; ``mt train`` has its own handlers."""
    import signal

    from mtcore.train.distributed import is_main_process
    from mtcore.train.progress import silence_hung_up_terminal

    if signum == getattr(signal, "SIGHUP", None):
        silence_hung_up_terminal()  # the terminal closed: writing to it would fail in the cleanup
    if is_main_process():
        print(f"error: {signal.Signals(signum).name} received: stopped", file=sys.stderr, flush=True)
    raise SystemExit(128 + signum)


class _StopOnTermination:
    """Installs :func:`_terminated` for SIGTERM and SIGHUP while a command runs (main thread only)."""

    def __enter__(self) -> None:
        import signal
        import threading

        self.previous: dict[Any, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return
        for name in ("SIGTERM", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is not None and signal.getsignal(sig) in (signal.SIG_DFL, None):  # a handler someone installed stays
                self.previous[sig] = signal.signal(sig, _terminated)

    def __exit__(self, *exc: Any) -> None:
        import signal

        for sig, previous in self.previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)


class _ErrorHandlingGroup(TyperGroup):
    """Turns user errors into one line and an exit code, for the real CLI and CliRunner alike."""

    def parse_args(self, ctx: Any, args: list[str]) -> Any:
        from mtcore.cli.plain_strings import pass_plain_strings

        pass_plain_strings(self, ctx)  # no pydantic import for `mt list-tasks --kind x`, `mt show-task ID`
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        from mtcore.cli.plain_strings import pass_plain_strings

        name, command, rest = super().resolve_command(ctx, args)
        pass_plain_strings(command, ctx)
        return name, command, rest

    def invoke(self, ctx: Any) -> Any:
        from mtcore.cli.output import forget_warnings

        forget_warnings()  # one command's warnings (CliRunner runs many in one process)
        with warnings.catch_warnings(), _StopOnTermination():
            if not debug_mode():
                warnings.showwarning = _one_line_warning
            return self._invoke(ctx)

    def _invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _PASS_THROUGH:
            raise
        except BrokenPipeError:
            _stdout_closed()
        except MtError as exc:
            if debug_mode():
                raise
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            from mtcore.train.distributed import is_main_process

            if not is_main_process():  # Ctrl-C reaches every process of a launch: the main one says so, once
                raise typer.Exit(130) from None
            fail("interrupted", 130)
        except Exception as exc:
            if debug_mode():
                raise
            if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG and exc.filename:  # a path given on the command line
                fail(f"{_shortened(exc.filename)}: name too long (the file system takes at most 255 bytes a name); choose a shorter one", 2)
            text = " ".join(str(exc).split())
            if type(exc).__name__ == "OutOfMemoryError":  # torch's, raised outside the training loop (mt predict, mt export)
                fail(f"{text.split('. ')[0]}; lower --batch-size, or use a smaller max_length", 1)
            fail(f"{unexpected_line(exc)} (set MT_DEBUG=1 to see the traceback)", 1)


app = typer.Typer(
    cls=_ErrorHandlingGroup,
    name="mt",
    help="mtcore: train multitask Transformer encoders — one shared encoder, a head per task.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"mtcore {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", callback=_version, is_eager=True),
) -> None:
    """mtcore: train multitask Transformer encoders — one shared encoder, a head per task."""


def _register_commands() -> None:
    from mtcore.cli import listing

    listing.register(app)
    for module_name in ("train", "check", "inference", "export", "average", "compare", "scaffold", "new_config", "cache"):
        try:
            module = __import__(f"mtcore.cli.{module_name}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"mtcore.cli.{module_name}":
                raise
            continue
        module.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point. Command-line mistakes (unknown command or option, missing
    argument) are one ``error:`` line too, exit code 2; ``mt`` alone prints the help."""
    from mtcore.outputs import tolerant_display

    tolerant_display()  # a Cyrillic task name on an ASCII terminal is escaped, never the command's end
    try:
        code = app(args=argv, prog_name="mt", standalone_mode=False)
    except SystemExit:
        if type(sys.stdout).__name__ == "PacifyFlushWrapper":  # click's exit 1 for a closed stdout (mt --help | head -1)
            _stdout_closed()
        raise
    except _click_exceptions.ClickException as exc:
        if os.environ.get("RANK", "0").strip() not in ("", "0"):  # under torchrun every process parses: the main one says it
            sys.exit(exc.exit_code)
        _usage_failed(exc, argv)
    except _ABORT:
        print("error: aborted", file=sys.stderr, flush=True)
        sys.exit(1)
    except BrokenPipeError:
        _stdout_closed()
    except MtError as exc:  # only with MT_DEBUG=1 (the commands turn it into one line otherwise): traceback, same code
        traceback.print_exc()
        sys.exit(exc.exit_code)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_closed()
    sys.exit(code if isinstance(code, int) else 0)


def _usage_failed(exc: Any, argv: list[str] | None) -> None:
    """One ``error:`` line for a command-line mistake click found (exit 2), or the help for ``mt`` alone."""
    if isinstance(exc, _click_exceptions.UsageError):
        if type(exc).__name__ == "NoArgsIsHelpError":  # `mt` or a group without a command: the help
            print(exc.format_message(), file=sys.stderr)
            sys.exit(exc.exit_code)
        command = exc.ctx.command_path if exc.ctx is not None else "mt"
        words = list(argv) if argv is not None else sys.argv[1:]
        if command == "mt" and words and words[0] in {c.name for c in app.registered_commands}:
            command = f"mt {words[0]}"  # an option of a command that failed to parse: that command's help
        message = " ".join(exc.format_message().split())
        print(f"error: {message} (see '{command} --help')", file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)
    print(f"error: {' '.join(exc.format_message().split())}", file=sys.stderr, flush=True)
    sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
