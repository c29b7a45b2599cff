"""BRAT standoff annotations: a ``.txt`` document beside its ``.ann`` file, or a folder of such pairs.

``.ann`` lines (tab-separated):

* ``T<n>  TYPE START END[;START END...]  text``: an entity (text-bound annotation); offsets are code points into the
  ``.txt``, and the quoted text must be what they cover (a mismatch names the ``.ann`` line);
* ``#`` (notes), ``R`` (relations), ``E`` (events), ``A``/``M`` (attributes), ``N`` (normalizations) and ``*``
  (equivalences) lines are skipped, counted in one ``brat-skipped`` finding.

Rules (stated in findings with the first ``file:line``):

* **discontinuous** entities (``START END;START END``) cover their first fragment's start to their last fragment's
  end, the gap included (``brat-discontinuous``);
* **Windows line ends**: a ``.txt`` with ``\\r\\n`` line ends is counted as brat's server counts it (each two
  characters) or as text-mode readers do (one), whichever the entities' quoted texts match (``brat-raw-line-ends``
  when it is the former); a leading byte-order mark likewise, counted as a character (as brat does) or not
  (``brat-bom`` when not);
* **nested** entities (one inside another, as GENIA and GermEval have) and **crossing** ones (overlapping, neither
  inside the other) are all kept in the example's ``spans`` (counted in ``brat-nested`` and ``brat-crossing``); its
  flat tags, which a flat model learns, hold the outermost (:func:`nerforge.data.layers.flatten`).

A ``.txt`` of a folder without its ``.ann`` is not read and is reported (``brat-no-ann``); beside an empty ``.ann``
it reads as a document without entities.

Each line of the document is an example (the document's lines are its sentences or paragraphs in BRAT corpora;
``doc_id`` is the document's name, so document context works), except that lines an entity spans are joined. Words
come from :func:`~nerforge.data.readers.tokenize.tokenize_v2`, as for the other character-offset formats.
"""

from __future__ import annotations

import bisect
from pathlib import Path

from nerforge.data.readers.offsets import CharSpan, char_spans_to_example
from nerforge.data.readers.options import ReadOptions
from nerforge.errors import DataFormatError, quote
from nerforge.types import Example, Finding

BRAT_FORMAT = "brat"
ANN_SUFFIX = ".ann"
SKIPPED_KINDS = "#RAEMN*"
BOM = "\ufeff"


def brat_format(path: str | Path) -> str | None:
    """``brat`` for an ``.ann`` file or a folder holding ``.ann`` files, else ``None``."""
    p = Path(path)
    if p.is_file() and p.suffix.lower() == ANN_SUFFIX:
        return BRAT_FORMAT
    if p.is_dir() and next(p.rglob(f"*{ANN_SUFFIX}"), None) is not None:
        return BRAT_FORMAT
    return None


def ann_files(path: str | Path) -> list[Path]:
    """The ``.ann`` files of ``path`` (itself, or those under the folder, in name order)."""
    p = Path(path)
    return [p] if p.is_file() else sorted(p.rglob(f"*{ANN_SUFFIX}"))


def read_brat(path: str | Path, options: ReadOptions) -> tuple[list[Example], list[Finding]]:
    """The examples of a BRAT document or folder (see the module docstring).

    Raises:
        DataFormatError: a ``.txt`` missing or unreadable, a malformed ``T`` line, offsets outside the text or
            whose text differs from the quoted one.
    """
    examples: list[Example] = []
    findings: list[Finding] = []
    counts = {"skipped": 0, "discontinuous": 0, "nested": 0, "crossing": 0, "empty": 0, "raw_line_ends": 0,
              "bom": 0}  # fmt: skip
    firsts: dict[str, str] = {}
    for ann in ann_files(path):
        text, spans = _read_pair(ann, counts, firsts)
        examples += _examples(text, spans, ann, counts, firsts, findings)
    if Path(path).is_dir():  # a document without its .ann is not read: said, so that it is not lost unnoticed
        alone = sorted(t for t in Path(path).rglob("*.txt") if not t.with_suffix(ANN_SUFFIX).is_file())
        if alone:
            findings.append(Finding("brat-no-ann", str(path), None, f"{len(alone)} .txt documents without an .ann "
                                    f"beside them not read (an empty .ann reads one as unannotated); first {alone[0]}",
                                    "warning"))  # fmt: skip
    for kind, message in (
        ("skipped", "relation, event, attribute, normalization and note lines skipped"),
        ("discontinuous", "discontinuous entities read from their first fragment's start to their last's end"),
        ("nested", "entities inside another entity (kept; the flat tags hold the outermost)"),
        ("crossing", "entities crossing another (kept; the flat tags hold the longer)"),
        ("empty", "entities of no characters (or of a line end only) left out"),
        ("raw_line_ends", "documents whose offsets count each \\r\\n line end as two characters, as brat's own "
         "server does (their quoted texts say so)"),
        ("bom", "documents whose offsets count from after the byte-order mark the .txt starts with (their quoted "
         "texts say so)"),
    ):  # fmt: skip
        if counts[kind]:
            severity = "warning" if kind in ("discontinuous", "empty") else "info"
            findings.append(Finding(f"brat-{kind.replace('_', '-')}", str(path), None,
                                    f"{counts[kind]} {message}; first at {firsts[kind]}", severity))  # fmt: skip
    return examples, findings


def _read_pair(ann: Path, counts: dict[str, int], firsts: dict[str, str]) -> tuple[str, list[tuple[CharSpan, int]]]:
    txt = ann.with_suffix(".txt")
    if not txt.is_file():
        raise DataFormatError(str(ann), None, f"no {txt.name} beside it", "each .ann file beside its .txt document")
    try:
        raw = txt.read_bytes().decode("utf-8")  # no newline translation: see _offsets_text
        lines = ann.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataFormatError(str(ann), None, f"not UTF-8 ({exc.reason} at byte {exc.start})", "UTF-8 files") from None
    entities: list[tuple[str, int]] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if line[0] in SKIPPED_KINDS:
            counts["skipped"] += 1
            firsts.setdefault("skipped", f"{ann}:{n}")
            continue
        if line[0] != "T":
            raise DataFormatError(
                str(ann), n, f"a line that starts with {quote(line[:1])}", "T (entity), R, E, A, M, N, * or # lines"
            )
        entities.append((line, n))
    text = _offsets_text(raw, entities, ann, counts, firsts)
    return text, [(_entity(line, text, ann, n, counts, firsts), n) for line, n in entities]


def _offsets_text(
    raw: str, entities: list[tuple[str, int]], ann: Path, counts: dict[str, int], firsts: dict[str, str]
) -> str:
    """The document text the ``.ann`` offsets count in. Two things of a ``.txt`` are counted either way in the wild:
    Windows (``\\r\\n``) line ends, which brat's own server reads untranslated (two characters) and tools reading
    text files in Python's default text mode as one ``\\n``; and a leading byte-order mark, which brat counts as a
    character and tools reading with ``utf-8-sig`` drop. The reading whose covered text matches the most of the
    entities' quoted texts wins (in the order translated, untranslated, then each without the mark, on a tie); the
    untranslated line ends and the dropped mark are reported (``brat-raw-line-ends``, ``brat-bom``)."""
    translated = raw.replace("\r\n", "\n").replace("\r", "\n")
    readings = [translated, raw]
    if raw.startswith(BOM):
        readings += [translated[1:], raw[1:]]
    readings = list(dict.fromkeys(readings))
    if len(readings) == 1:
        return raw

    def fits(text: str) -> int:
        fitting = 0
        for line, n in entities:
            try:
                _entity(line, text, ann, n, {"discontinuous": 0}, {})
            except DataFormatError:
                continue
            fitting += 1
        return fitting

    scores = [fits(text) for text in readings]
    text = readings[scores.index(max(scores))]
    for kind, chosen in (("raw_line_ends", "\r\n" in text), ("bom", raw.startswith(BOM) and not text.startswith(BOM))):
        if chosen:
            counts[kind] += 1
            firsts.setdefault(kind, str(ann))
    return text


def _entity(line: str, text: str, ann: Path, n: int, counts: dict[str, int], firsts: dict[str, str]) -> CharSpan:
    fields = line.split("\t")
    if len(fields) < 2:
        raise DataFormatError(
            str(ann), n, f"{quote(line[:60])} has no tab after the id", "T1<TAB>TYPE START END<TAB>text"
        )
    kind, _, ranges = fields[1].partition(" ")
    try:
        fragments = [tuple(int(x) for x in part.split()) for part in ranges.split(";")]
    except ValueError:
        fragments = []
    if not kind or not fragments or any(len(f) != 2 or not 0 <= f[0] <= f[1] <= len(text) for f in fragments):
        raise DataFormatError(
            str(ann),
            n,
            f"entity {quote(fields[1])} has no type or offsets outside the text ({len(text)} characters)",
            "TYPE START END with 0 <= START <= END <= the text's length",
        )
    quoted = fields[2] if len(fields) > 2 else None
    covered = " ".join(text[a:b] for a, b in fragments)
    if quoted is not None and quoted != covered and quoted.split() != covered.split():
        raise DataFormatError(
            str(ann),
            n,
            f"the offsets cover {quote(covered)} but the line says {quote(quoted)}",
            "offsets in characters (code points) of the .txt beside it",
        )
    if len(fragments) > 1:
        counts["discontinuous"] += 1
        firsts.setdefault("discontinuous", f"{ann}:{n}")
    return CharSpan(fragments[0][0], fragments[-1][1], kind)


def _overlaps(
    spans: list[tuple[CharSpan, int]], ann: Path, counts: dict[str, int], firsts: dict[str, str]
) -> list[tuple[CharSpan, int]]:
    """The entities with characters, sorted by start; nested and crossing ones counted (all are kept)."""
    kept: list[tuple[CharSpan, int]] = []
    reach: tuple[CharSpan, int] | None = None  # the entity that reaches furthest so far
    for span, n in sorted(spans, key=lambda x: (x[0].start, -x[0].end)):
        if span.start == span.end:
            counts["empty"] += 1
            firsts.setdefault("empty", f"{ann}:{n}")
            continue
        if reach is not None and span.start < reach[0].end:
            kind = "nested" if span.end <= reach[0].end else "crossing"
            counts[kind] += 1
            firsts.setdefault(kind, f"{ann}:{n}")
        if reach is None or span.end > reach[0].end:
            reach = (span, n)
        kept.append((span, n))
    return kept


def _examples(
    text: str,
    spans: list[tuple[CharSpan, int]],
    ann: Path,
    counts: dict[str, int],
    firsts: dict[str, str],
    findings: list[Finding],
) -> list[Example]:
    kept = _overlaps(spans, ann, counts, firsts)  # sorted by start: one sweep below, no search
    covered: list[tuple[int, int]] = []  # the entities' character ranges, merged
    for span, _ in kept:
        if covered and span.start < covered[-1][1]:
            covered[-1] = (covered[-1][0], max(covered[-1][1], span.end))
        else:
            covered.append((span.start, span.end))
    covered_starts = [a for a, _ in covered]
    # where each line after the first starts (after a \\n, or a lone \\r of a file read untranslated)
    breaks = [i + 1 for i, c in enumerate(text) if c == "\n" or (c == "\r" and text[i + 1 : i + 2] != "\n")]

    def within_an_entity(at: int) -> bool:
        k = bisect.bisect_left(covered_starts, at) - 1  # the last merged range starting before ``at``
        return k >= 0 and covered[k][1] > at

    # segments: the document's lines, joined where an entity runs across a line end
    bounds = [0, *(b for b in breaks if not within_an_entity(b)), len(text)]
    out: list[Example] = []
    k = 0
    for start, end in zip(bounds, bounds[1:], strict=False):
        segment = text[start:end]
        body = segment.rstrip("\r\n")
        local = []
        while k < len(kept) and kept[k][0].start < end:
            s, n = kept[k]
            k += 1
            if s.start - start >= len(body):  # only the line end
                counts["empty"] += 1
                firsts.setdefault("empty", f"{ann}:{n}")
                continue
            local.append(CharSpan(s.start - start, min(s.end - start, len(body)), s.label))
        line = bisect.bisect_right(breaks, start) + 1
        example = char_spans_to_example(
            body, local, path=str(ann.with_suffix(".txt")), line=line, doc_id=ann.stem, findings=findings
        )
        if example is not None:
            out.append(example)
    return out
