"""The ``nerforge`` command: one Typer app, one module per subcommand, each a thin wrapper over a library function.

Only this package prints or exits. A :class:`~nerforge.errors.NerforgeError` becomes one line on stderr and exit
code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import sys
import traceback
import typing
from pathlib import Path
from typing import Any

import typer

from nerforge.cli.examples import epilog
from nerforge.cli.signals import signals_as_exceptions
from nerforge.errors import Interrupted, NerforgeError
from nerforge.io_utils import disk_full

app = typer.Typer(
    name="nerforge",
    help="Train, evaluate, export and serve custom named-entity recognizers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module defines register(app). Kept as a list so a new command is one line here and one module.
_COMMANDS = (
    "init",
    "inspect",
    "convert",
    "annotate",
    "train",
    "tune",
    "distill",
    "evaluate",
    "predict",
    "suggest",
    "export",
    "serve",
    "info",
    "bench",
)


def _register() -> None:
    for name in _COMMANDS:  # a command module that fails to import is an error, never a silently missing command
        importlib.import_module(f"nerforge.cli.{name}_cmd").register(app)


class _BarSafeHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Log lines on stderr that never share a line with a progress bar: written through ``tqdm.write``, which clears
    the open bars, prints the line and draws the bars again below it."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


# Value names in --help: plain words instead of the type names Typer shows (<str>, <list[Path]>, <bool>).
_PLAIN_METAVARS = {"integer": "N", "float": "NUMBER", "text": "TEXT", "path": "PATH", "file": "FILE"}


def reflow(text: str) -> str:
    """A docstring as help text: the lines of each paragraph joined into one (Typer keeps the line breaks of every
    paragraph after the first, so a docstring wrapped at 120 columns showed ragged lines in an 80-column terminal);
    paragraphs whose lines are indented (examples, lists) are kept as written."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    out = []
    for paragraph in paragraphs:
        lines = paragraph.splitlines()
        if any(line.startswith((" ", "\t", "- ", "* ", "\b")) for line in lines):
            out.append(paragraph)
        else:
            out.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(out)


def _plain_help(command: Any) -> None:
    """Give every option of ``command`` (and its subcommands) a plain value name, none for on/off flags, and its
    default in the help text; an option's own ``metavar`` is kept."""
    for name, sub in getattr(command, "commands", {}).items():
        _plain_help(sub)
        if not getattr(sub, "epilog", None):
            sub.epilog = epilog(name)
        if isinstance(getattr(sub, "help", None), str):
            sub.help = reflow(sub.help)
    make_help = getattr(command, "get_help_option", None)
    if make_help is not None:

        def help_option(ctx: Any, _make: Any = make_help) -> Any:
            option = _make(ctx)
            if option is not None:
                option.metavar = ""
            return option

        command.get_help_option = help_option
    for param in getattr(command, "params", []):
        if getattr(param, "param_type_name", "") == "argument":
            if param.metavar is None:
                param.metavar = param.name.upper()
            if hasattr(param, "display_type_rich"):  # the name column says it; no "<path>" beside it
                param.display_type_rich = lambda ctx: None
            if hasattr(param, "_usage_display_name") and param.required:  # MODEL, not {MODEL}
                shown = param.metavar + ("..." if param.nargs != 1 else "")
                param._usage_display_name = lambda _shown=shown: _shown
            continue
        if getattr(param, "is_flag", False):
            param.metavar = ""  # an on/off switch takes no value
            continue
        if param.metavar is None:
            kind, choices = _value_kind(param)
            param.metavar = "|".join(map(str, choices)) if choices else _PLAIN_METAVARS.get(kind, kind.upper())
        if param.default is not None and param.default != () and not param.hidden:
            param.show_default = True


def _value_kind(param: Any) -> tuple[str, Any]:
    """(``integer`` | ``float`` | ``text`` | ``path`` | ..., choices or ``None``) of an option, from click's type
    (Typer before 0.26) or Typer's own type descriptor (later ones)."""
    kind = getattr(param, "type", None)
    if kind is not None:
        return str(getattr(kind, "name", "text")), getattr(kind, "choices", None)
    desc = getattr(param, "type_descriptor", None)
    if desc is None:
        return "text", None

    def attr(name: str) -> Any:
        value = getattr(desc, name, None)
        return value() if inspect.ismethod(value) else value  # properties in some Typer versions, methods in others

    if attr("is_choice"):
        return "choice", attr("choices")
    if attr("is_path"):
        return "path", None
    annotation = attr("annotation")
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is list or (args and len(args) == 1):  # list[X], X | None
        annotation = args[0]
    names = {int: "integer", float: "float", str: "text", bool: "boolean"}
    return names.get(annotation, "path" if annotation is Path else "text"), None


def _command() -> Any:
    """The click command of ``app`` with :func:`_plain_help` applied (built once per process)."""
    global _BUILT
    if _BUILT is None:
        _BUILT = typer.main.get_command(app)
        _plain_help(_BUILT)
    return _BUILT


_BUILT: Any = None


def _version(value: bool) -> None:
    if value:
        from nerforge import __version__

        typer.echo(f"nerforge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages; show a traceback on a crash."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    handler = _BarSafeHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    logging.getLogger("nerforge").setLevel(logging.DEBUG if verbose else logging.INFO)  # also read by main()
    for chatty in ("httpx", "httpx2", "httpcore", "urllib3", "mlflow", "alembic"):  # HTTP requests, store set-up
        logging.getLogger(chatty).setLevel(logging.DEBUG if verbose else logging.WARNING)


_register()

# Exit codes (README, "Exit codes"): 0 done; 1 a failure of the machine or of nerforge itself (a disk that filled up,
# an unexpected error); 2 a problem with the command line, a config, a data file or a model directory; 130 Ctrl-C
# (SIGINT); 143 SIGTERM.
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _click_exception_types() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(ClickException classes, Abort classes) of every click that Typer may raise from.

    Typer 0.29 vendors its own click as ``typer._click``; older Typer uses the installed ``click`` package. Both are
    caught, so that a usage mistake is never a traceback whichever of them raised it.
    """
    errors: list[type[BaseException]] = []
    aborts: list[type[BaseException]] = [typer.Abort]
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        errors.append(module.ClickException)
        if hasattr(module, "Abort"):  # typer._click takes Abort from typer.exceptions
            aborts.append(module.Abort)
    return tuple(errors), tuple(aborts)


def _close_progress_bars() -> None:
    """End any progress bar still open, so that the last message starts on a line of its own."""
    try:
        from tqdm.std import tqdm
    except ImportError:  # pragma: no cover - a dependency
        return
    for bar in list(getattr(tqdm, "_instances", ())):
        try:
            bar.close()
        except Exception:  # noqa: BLE001 - a bar that cannot close must not hide the real message
            pass


def _verbose() -> bool:
    return logging.getLogger("nerforge").isEnabledFor(logging.DEBUG)


def _say(message: str) -> None:
    _close_progress_bars()
    typer.echo(message, err=True)


def _os_error_line(exc: OSError) -> str:
    """One line for an OS error: the path(s) and the reason, never a traceback."""
    reason = exc.strerror or str(exc) or exc.__class__.__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"error: {' -> '.join(paths) + ': ' if paths else ''}{reason}"


def main(argv: list[str] | None = None, *, exiting: bool = False) -> int:
    """Run the CLI; returns the exit code (used by the console script and by tests). Never raises.

    Every way a command can end maps to one exit code and at most one line on stderr (a usage mistake adds the
    usage line): see ``EXIT_*`` above.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    click_errors, click_aborts = _click_exception_types()
    with signals_as_exceptions(exiting=exiting):
        try:
            rv = _command()(args=argv, standalone_mode=False, prog_name="nerforge")
        except Interrupted as exc:
            _say(f"{exc.message}; {exc.hint}" if exc.hint else exc.message)
            return exc.exit_code
        except KeyboardInterrupt:  # SIGINT where no handler could be installed (not the main thread)
            _say("interrupted")
            return 130
        except NerforgeError as exc:
            _say(f"error: {exc}")
            return EXIT_USAGE
        except click_errors as exc:  # usage mistakes: usage line + one error line
            exc.show()  # type: ignore[attr-defined]
            code = int(getattr(exc, "exit_code", EXIT_USAGE))
            return EXIT_USAGE if code == EXIT_FAILURE else code
        except click_aborts:
            _say("aborted")
            return EXIT_FAILURE
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_FAILURE)
        except OSError as exc:
            if _verbose():
                traceback.print_exc()
            _say(_os_error_line(exc))
            return EXIT_FAILURE
        except Exception as exc:  # a bug of ours: one line, the traceback with --verbose
            if _verbose():
                traceback.print_exc()
            if disk_full(exc):  # a library's own error type around ENOSPC: the machine, not a bug
                _say(
                    "error: no space left on the disk (or the quota is reached) while writing; free some space or "
                    "choose another --output, then run the command again"
                )
                return EXIT_FAILURE
            first = (str(exc).splitlines() or [""])[0][:300]
            _say(
                f"error: unexpected {exc.__class__.__name__}: {first} "
                "(a bug in nerforge; rerun with --verbose for the traceback and report it)"
            )
            return EXIT_FAILURE
    # Typer returns an exit code instead of raising for typer.Exit (--version, --help) and for a KeyboardInterrupt
    # it caught itself; commands return None.
    if rv == 130:
        _say("interrupted")
    return rv if isinstance(rv, int) else EXIT_OK


def _entry() -> None:
    sys.exit(main(exiting=True))
