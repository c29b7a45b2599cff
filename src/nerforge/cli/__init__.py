"""The ``nerforge`` command: one Typer app, one module per subcommand, each a thin wrapper over a library function.

Only this package prints or exits. A :class:`~nerforge.errors.NerforgeError` becomes one line on stderr and exit
code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer

from nerforge.errors import NerforgeError

app = typer.Typer(
    name="nerforge",
    help="Train, evaluate, export and serve custom named-entity recognizers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module defines register(app). Kept as a list so a new command is one line here and one module.
_COMMANDS = ("convert", "inspect", "train", "evaluate", "predict", "export", "serve", "bench")


def _register() -> None:
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"nerforge.cli.{name}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name == f"nerforge.cli.{name}_cmd":
                continue  # command not built yet
            raise
        module.register(app)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (used by the console script and by tests)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        app(args=argv, standalone_mode=False)
    except NerforgeError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except SystemExit as exc:  # typer's own exits (help, usage errors)
        return int(exc.code or 0)
    except Exception as exc:  # click usage errors in non-standalone mode
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            return 1
        raise
    return 0


def _entry() -> None:
    sys.exit(main())
