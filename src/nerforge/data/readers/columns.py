"""Column files (CoNLL and its relatives): one token per line, a blank line between sentences.

Rules (each quirk handled is recorded as a :class:`~nerforge.types.Finding`):

* **Separator.** ``options.separator``: ``"\\t"`` splits on TAB, ``" "`` on runs of ASCII whitespace (as awk's
  ``FS=" "``; a no-break space stays inside its token), any other string literally. ``None`` picks TAB when most
  of the first 5000 non-blank lines contain a TAB, else whitespace runs. With TAB, tokens keep their inner and
  leading spaces (``"  18"``, ``"\\u202fOracle"``).
* **Columns.** ``token_column`` / ``tag_column`` are 0-based; negative values count from the end of a full line.
  Trailing empty fields are dropped first (``trailing-separator``: ``"Proven O "``, GermEval's ``1\\t"\\tO\\tO\\t``), so
  ``tag_column=-1`` is the last non-empty field. The file's column count is the most common count; a line with
  fewer columns whose tag column is missing is a ``missing-tag`` (tagged ``O``, or an error when
  ``missing_tag="error"``); any other column count raises.
* **Sentence breaks** are empty or whitespace-only lines, any number in a row.
* **Documents.** A line whose first field is ``-DOCSTART-`` is never a token or a sentence. It may open a document
  (followed by a blank line or not: CoNLL-2002 Dutch) or close one (CoNLL-2003 IOB1, where markers sit at the end of
  each document). Sentences get ``doc_id`` ``"0"``, ``"1"``, ... when the file has markers.
* **Comments.** A line starting with ``#`` is a comment (GermEval's ``#\\t<url>\\t[date]``) unless it has the file's
  column count and a valid tag in the tag column: ``#\\tO`` is the token ``#``.
* CRLF, a BOM and a missing final newline are handled by :mod:`~nerforge.data.readers.source`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from itertools import groupby

from nerforge.data.readers.options import MISSING_TAG_POLICIES, ReadOptions
from nerforge.data.readers.source import Source, split_lines
from nerforge.data.schemes import is_valid_tag, parse_tag
from nerforge.errors import DataFormatError, UsageError, quote
from nerforge.types import Example, Finding

DOCSTART = "-DOCSTART-"
MAX_COLUMNS = 64  # CoNLL-U has 10, the widest column formats we know about 20: more is a sentence on one line
LONG_SENTENCE = 5000  # tokens; more usually means missing blank lines between sentences (reported, still read)
_SNIFF_LINES = 5000
_ASCII_WS = " \t\f\v"
_split_ascii_whitespace = re.compile(r"[ \t\f\v]+").split


@dataclass
class _Layout:
    """How the lines of one file are split into columns."""

    n_cols: int
    token_col: int
    tag_col: int


def read_columns(source: Source, options: ReadOptions) -> tuple[list[Example], list[Finding]]:
    """Read a column file (see the module docstring). Tags are the raw strings of the tag column.

    Raises:
        DataFormatError: a line with a wrong number of columns, or a missing tag when ``missing_tag="error"``.
    """
    if options.missing_tag not in MISSING_TAG_POLICIES:
        raise UsageError(f"unknown missing_tag {options.missing_tag!r}; expected one of {MISSING_TAG_POLICIES}")
    path = source.path
    lines, findings = split_lines(source)
    sep = _separator(lines, options.separator)
    fields: list[list[str] | None] = []
    kinds: list[str] = []
    trailing: list[int] = []
    widths: dict[int, int] = {}  # line index -> field count before trailing empty fields were dropped
    whitespace_lines = 0
    for i, line in enumerate(lines):
        if not line.strip():
            fields.append(None)
            kinds.append("blank")
            whitespace_lines += bool(line)
            continue
        if sep == " ":
            f = line.split() if line.isascii() else _split_ascii_whitespace(line.strip(_ASCII_WS))
            if line[-1] in _ASCII_WS:
                trailing.append(i)
        else:
            f = line.split(sep)
            if len(f) > 1 and not f[-1].strip():
                trailing.append(i)
                widths[i] = len(f)
                while len(f) > 1 and not f[-1].strip():
                    f.pop()
        fields.append(f)
        if line[0] == "#":
            kinds.append("hash")
        elif (line.startswith(DOCSTART) or line[0].isspace()) and is_docstart_line(line):
            kinds.append("docstart")
        else:
            kinds.append("token")
    layout = _layout(fields, kinds, options, path)
    findings += _tag_columns_finding(fields, kinds, layout, path)
    _resolve_hash_lines(fields, kinds, layout, options)
    examples = _assemble(fields, kinds, layout, options, path, findings, widths)
    if trailing:
        findings.append(
            Finding(
                "trailing-separator",
                path,
                trailing[0] + 1,
                f"{len(trailing)} line(s) end with a separator (ignored)",
                "info",
            )
        )
    if whitespace_lines:
        findings.append(
            Finding("whitespace-line", path, None, f"{whitespace_lines} whitespace-only line(s) read as breaks", "info")
        )
    comments = [i for i, k in enumerate(kinds) if k == "comment"]
    if comments:
        findings.append(Finding("comment", path, comments[0] + 1, f"{len(comments)} comment line(s) skipped", "info"))
    return examples, findings


def _separator(lines: list[str], separator: str | None) -> str:
    """The separator to split on: TAB, ``" "`` (runs of whitespace) or a literal string."""
    if separator == "":
        raise UsageError("the column separator is empty; give e.g. '\\t' (TAB) or ' ' (runs of whitespace)")
    if separator is not None:
        return separator
    nonblank = with_tab = 0
    for ln in lines:  # the first _SNIFF_LINES non-blank lines decide
        if ln.strip():
            nonblank += 1
            with_tab += "\t" in ln
            if nonblank == _SNIFF_LINES:
                break
    return "\t" if nonblank and 2 * with_tab > nonblank else " "


def _layout(fields: list[list[str] | None], kinds: list[str], options: ReadOptions, path: str) -> _Layout:
    """The file's column count (the most common one, ``#`` lines and markers aside) and resolved columns."""
    special = [i for i, k in enumerate(kinds) if k in ("hash", "docstart")]
    counts: Counter[int] = Counter(map(len, filter(None, fields)))  # every non-blank line, then take out the others
    others: Counter[int] = Counter(len(fields[i] or ()) for i in special)
    hashed: Counter[int] = Counter(len(fields[i] or ()) for i in special if kinds[i] == "hash")
    counts = +(counts - others) or hashed
    if not counts:
        raise DataFormatError(path, None, "no token lines found", "one token per line, then its tag")
    n_cols = counts.most_common(1)[0][0]
    first = next(i for i, f in enumerate(fields) if f is not None and len(f) == n_cols) + 1
    if n_cols < 2:
        raise DataFormatError(path, first, "lines have a single column", "a token column and a tag column")
    _check_one_token_per_line(fields[first - 1], n_cols, path, first)
    token_col = options.token_column if options.token_column >= 0 else n_cols + options.token_column
    tag_col = options.tag_column if options.tag_column >= 0 else n_cols + options.tag_column
    for name, col, given in (("token", token_col, options.token_column), ("tag", tag_col, options.tag_column)):
        if not 0 <= col < n_cols:
            raise DataFormatError(path, first, f"{name} column {given} does not exist", f"a column of 0..{n_cols - 1}")
    if token_col == tag_col:
        raise DataFormatError(path, first, f"the token and tag columns are both column {token_col}", "two columns")
    return _Layout(n_cols=n_cols, token_col=token_col, tag_col=tag_col)


def _tag_columns_finding(fields: list[list[str] | None], kinds: list[str], layout: _Layout, path: str) -> list[Finding]:
    """An ``info`` finding when several columns hold tags (SkillSpan's skill and knowledge layers): which is read.

    A column holds tags when, in the first :data:`_SNIFF_LINES` token lines of the file's width, at least 98% of the
    values are tags (a few junk tags allowed) and some are not ``O``.
    """
    rows = [f for f, k in zip(fields, kinds, strict=True) if k == "token" and f is not None and len(f) == layout.n_cols]
    rows = rows[:_SNIFF_LINES]

    def holds_tags(c: int) -> bool:
        values = [r[c].strip() for r in rows]
        good = sum(1 for v in values if is_valid_tag(v))
        return good >= 0.98 * len(values) and any(v != "O" and is_valid_tag(v) for v in values)

    tagged = [c for c in range(layout.n_cols) if c != layout.token_col and rows and holds_tags(c)]
    if len(tagged) < 2:
        return []

    def types(c: int) -> str:
        found = Counter(
            parse_tag(v).type
            for v in (r[c].strip() for r in rows)
            if v != "O" and is_valid_tag(v) and parse_tag(v).type
        )
        names = [t for t, _ in found.most_common(4)]
        return "/".join(names) + (f"/... ({len(found)} types)" if len(found) > 4 else "")

    listed = ", ".join(f"{c} ({types(c)})" for c in tagged)
    return [
        Finding(
            "tag-columns",
            path,
            None,
            f"{len(tagged)} columns hold tags: {listed}; column {layout.tag_col} is read "
            "(--tag-column N reads another)",
            "info",
        )
    ]


def _check_one_token_per_line(f: list[str] | None, n_cols: int, path: str, line: int) -> None:
    """Refuse a file whose lines hold whole sentences (``w O w O ...``) instead of one token each.

    Raises:
        DataFormatError: more than :data:`MAX_COLUMNS` columns, or 3+ token/tag pairs on the line.
    """
    assert f is not None
    if n_cols > MAX_COLUMNS:
        raise DataFormatError(
            path,
            line,
            f"the line has {n_cols} columns",
            f"one token per line with at most {MAX_COLUMNS} columns (is a whole sentence on one line?)",
        )
    pairs = n_cols // 2
    if (
        n_cols % 2 == 0
        and pairs >= 3
        and all(is_valid_tag(f[i].strip()) for i in range(1, n_cols, 2))
        and not all(is_valid_tag(f[i].strip()) for i in range(0, n_cols, 2))
    ):
        raise DataFormatError(
            path,
            line,
            f"the line holds {pairs} token/tag pairs ({quote(' '.join(f[:4]) + ' ...')})",
            "one token and its tag per line, a blank line between sentences",
        )


def is_docstart_line(line: str) -> bool:
    """Whether ``line`` is a ``-DOCSTART-`` marker (its first whitespace-separated field)."""
    head = line.lstrip()
    return head.startswith(DOCSTART) and (len(head) == len(DOCSTART) or head[len(DOCSTART)].isspace())


def _resolve_hash_lines(
    fields: list[list[str] | None], kinds: list[str], layout: _Layout, options: ReadOptions
) -> None:
    """A line starting with ``#`` is a token when it has the file's column count and a tag, else a comment."""
    has_names = bool(options.label_names or options.labels_file)
    for i, kind in enumerate(kinds):
        if kind != "hash":
            continue
        f = fields[i]
        assert f is not None
        tag = f[layout.tag_col].strip() if len(f) == layout.n_cols else ""
        kinds[i] = "token" if is_valid_tag(tag) or (has_names and tag.isdigit()) else "comment"


def _token_line(
    f: list[str] | None,
    no: int,
    layout: _Layout,
    options: ReadOptions,
    path: str,
    findings: list[Finding],
    width: int | None = None,
) -> tuple[str, str]:
    """The token and tag of one token line whose column count differs from the file's, or whose tag is empty."""
    assert f is not None
    n, n_cols, token_col, tag_col = len(f), layout.n_cols, layout.token_col, layout.tag_col
    if n > n_cols and not options.lenient:
        _check_one_token_per_line(f, n, path, no)  # names a sentence on one line as such
    # A short line whose missing fields are empty ones at its end (``tok<TAB>O<TAB>``: the third tag is empty) has
    # its columns in place, so columns counted from the start are right; a line that lacks a field somewhere is
    # ambiguous when the tag column exists in it.
    in_place = width == n_cols and options.token_column >= 0 and options.tag_column >= 0
    ambiguous = n < n_cols and (tag_col < n or token_col >= n) and not (in_place and token_col < n)
    if (n > n_cols or ambiguous) and not (options.lenient and token_col < n):
        raise DataFormatError(
            path,
            no,
            f"the line has {n} column(s), the rest of the file has {n_cols}",
            f"{n_cols} columns (--lenient reads such lines, tagging a missing tag O)",
        )
    if n != n_cols and tag_col < n:
        findings.append(
            Finding(
                "short-line" if n < n_cols else "long-line",
                path,
                no,
                f"the line has {n} column(s), the rest of the file has {n_cols}; column {tag_col} read as its tag",
                "warning",
            )
        )
    tag = f[tag_col].strip() if tag_col < n else ""
    if not tag:
        if options.missing_tag == "error":
            raise DataFormatError(
                path, no, f"token {quote(f[token_col])} has no tag (column {tag_col})", f"{n_cols} columns"
            )
        tag = "O"
        findings.append(Finding("missing-tag", path, no, f"token {quote(f[token_col])} has no tag; tagged O"))
    return f[token_col], tag


def _assemble(
    fields: list[list[str] | None],
    kinds: list[str],
    layout: _Layout,
    options: ReadOptions,
    path: str,
    findings: list[Finding],
    widths: dict[int, int],
) -> list[Example]:
    has_docs = "docstart" in kinds
    examples: list[Example] = []
    tokens: list[str] = []
    tags: list[str] = []
    token_lines: list[int] = []
    doc: int | None = None
    next_doc = 0
    new_doc_pending = False

    def flush() -> None:
        nonlocal doc, next_doc, new_doc_pending
        if not tokens:
            return
        if has_docs and (new_doc_pending or doc is None):
            doc, next_doc, new_doc_pending = next_doc, next_doc + 1, False
        if len(tokens) > LONG_SENTENCE:
            findings.append(
                Finding(
                    "long-sentence",
                    path,
                    token_lines[0],
                    f"a sentence of {len(tokens):,} tokens (lines {token_lines[0]}-{token_lines[-1]}); "
                    "are blank lines between sentences missing? (read as one sentence)",
                    "warning",
                )
            )
        examples.append(
            Example(
                tuple(tokens),
                tuple(tags),
                doc_id=str(doc) if doc is not None else None,
                source=path,
                line=token_lines[0],
                token_lines=tuple(token_lines),
            )
        )
        tokens.clear()
        tags.clear()
        token_lines.clear()

    n_cols, token_col, tag_col = layout.n_cols, layout.token_col, layout.tag_col
    start = 0
    for kind, group in groupby(kinds):  # runs of lines of one kind
        end = start + len(list(group))
        if kind == "token":
            block: list[list[str]] = fields[start:end]  # type: ignore[assignment]  # token lines have fields
            regular = all(len(f) == n_cols for f in block)
            fast = [f[tag_col].strip() for f in block] if regular else []
            if fast and all(fast):  # the common case: the whole run has the file's columns and tags
                tokens.extend([f[token_col] for f in block])
                tags.extend(fast)
            else:
                for i in range(start, end):
                    token, tag = _token_line(fields[i], i + 1, layout, options, path, findings, widths.get(i))
                    tokens.append(token)
                    tags.append(tag)
            token_lines.extend(range(start + 1, end + 1))
        elif kind == "blank":
            flush()
        elif kind == "docstart":
            for i in range(start, end):
                if tokens:
                    findings.append(
                        Finding("docstart-inside-sentence", path, i + 1, "-DOCSTART- directly after a token", "info")
                    )
                flush()
                new_doc_pending = True
                if i + 1 < len(kinds) and kinds[i + 1] != "blank":
                    findings.append(
                        Finding(
                            "docstart-not-followed-by-blank",
                            path,
                            i + 1,
                            "-DOCSTART- is the first line of a sentence block (not read as a token)",
                            "info",
                        )
                    )
        start = end
    flush()
    content = [i for i, k in enumerate(kinds) if k in ("token", "docstart")]
    if has_docs and kinds[content[0]] == "token" and kinds[content[-1]] == "docstart":
        markers = kinds.count("docstart")
        findings.append(
            Finding(
                "docstart-at-end",
                path,
                content[-1] + 1,
                f"{markers} -DOCSTART- line(s) close documents instead of opening them",
                "info",
            )
        )
    return examples
