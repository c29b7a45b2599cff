"""Line checks on the raw text of a column file: token lines with more fields than the rest of the file.

Readers drop trailing empty fields (GermEval's ``1\\t"\\tO\\tO\\t``) and report them in one summary finding; this
check names each such line, since a loader that takes the last field as the tag gets ``''`` there.
Only separators that can produce empty fields matter (TAB or a literal string); runs of whitespace cannot.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from nerforge.data.checks.common import DOCSTART, WARNING
from nerforge.types import Finding


def file_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 file without BOM and line endings (``\\n`` or ``\\r\\n``); undecodable bytes replaced."""
    text = Path(path).read_bytes().decode("utf-8", errors="replace").removeprefix("\ufeff")
    return [line.removesuffix("\r") for line in text.split("\n")]


def column_separator(lines: Sequence[str], given: str | None) -> str | None:
    """The literal separator of a column file (TAB when most non-blank lines hold one), or ``None`` for runs of
    whitespace, where fields cannot be empty."""
    if given is not None:
        return None if given == " " else given
    nonblank = [line for line in lines if line.strip()]
    with_tab = sum(1 for line in nonblank if "\t" in line)
    return "\t" if nonblank and 2 * with_tab > len(nonblank) else None


def check_extra_fields(lines: Sequence[str], path: str, separator: str | None) -> Iterator[Finding]:
    """Token lines with more fields than the file's usual count, the extra ones empty (``extra-field``).

    Blank lines, ``#`` comments and ``-DOCSTART-`` lines are not token lines.
    """
    if separator is None:
        return
    counts: Counter[int] = Counter()
    split: list[tuple[int, list[str]]] = []
    for no, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#") or line.lstrip().startswith(DOCSTART):
            continue
        fields = line.split(separator)
        counts[len(fields)] += 1
        split.append((no, fields))
    if not counts:
        return
    usual = counts.most_common(1)[0][0]
    for no, fields in split:
        extra = fields[usual:]
        if len(fields) > usual and not any(f.strip() for f in extra):
            yield Finding(
                "extra-field",
                path,
                no,
                f"{len(fields)} fields, the last {len(extra)} empty (a trailing separator); other token lines have "
                f"{usual}, so taking the last field as the tag gives ''",
                WARNING,
            )
