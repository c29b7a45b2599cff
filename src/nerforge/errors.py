"""The one exception family that nerforge raises.

Every error carries a stable code (``E1xx`` data, ``E2xx`` config, ``E3xx`` model, ``E4xx`` usage) and a
message that says what is wrong, where, and what was expected. Only ``nerforge.cli`` turns them into exit codes.
"""

from __future__ import annotations

from pathlib import Path


class NerforgeError(Exception):
    """Base class of every error nerforge raises on purpose."""

    code = "E000"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class DataFormatError(NerforgeError):
    """Input data that cannot be read as asked.

    Args:
        path: the file (or a name such as ``<stdin>``).
        line: 1-based line number, or ``None`` when the problem is the whole file.
        problem: what is wrong.
        expected: what was expected instead (optional).
    """

    code = "E100"

    def __init__(
        self,
        path: str | Path,
        line: int | None,
        problem: str,
        expected: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        self.expected = expected
        where = f"{self.path}:{line}" if line is not None else self.path
        text = f"{where}: {problem}"
        if expected:
            text += f"; expected {expected}"
        super().__init__(text)


class TagSchemeError(NerforgeError):
    """A tag sequence that breaks the rules of a tag scheme, or an unknown scheme name."""

    code = "E110"


class ConfigError(NerforgeError):
    """A configuration key or value that is unknown or invalid."""

    code = "E200"


class ModelError(NerforgeError):
    """A model directory that cannot be loaded, or a model that cannot do what was asked."""

    code = "E300"


class UsageError(NerforgeError):
    """Arguments that do not fit together."""

    code = "E400"


class LengthMismatchError(UsageError):
    """Gold and predicted tag sequences that cannot be compared: different sentence counts or lengths."""

    code = "E401"


class MissingDependencyError(NerforgeError):
    """An optional dependency is not installed; the message names the extra to install."""

    code = "E410"

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f"{package} is not installed; install it with: pip install 'nerforge[{extra}]'")
        self.package = package
        self.extra = extra


class Interrupted(BaseException):
    """The process got SIGINT (Ctrl-C) or SIGTERM; raised by the CLI's signal handlers.

    A ``BaseException`` like :class:`KeyboardInterrupt`, so that ``except Exception`` in a library cannot swallow it
    and every ``finally`` and ``except BaseException`` cleanup (temporary files, locks, MLflow runs) still runs.
    ``exit_code`` follows the shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = signum
        self.exit_code = 128 + signum
        self.message = "interrupted" if signum == signal.SIGINT else f"terminated ({signal.Signals(signum).name})"
        self.hint: str | None = None
        """What the interrupted work left and how to continue it (``train``: the checkpoint and ``--resume``)."""
        super().__init__(self.message)


QUOTE_LIMIT = 80


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` for an error line, cut to about ``limit`` characters (a whole file read as one token must not
    become a megabyte-long message): ``'aaaa…' (12,345 characters)``."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[: limit - 1]!r}… ({len(value):,} characters)".replace("'…", "…'", 1)
    text = repr(value)
    return text if len(text) <= limit + 2 else text[:limit] + "…"
