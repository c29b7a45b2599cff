"""Character-offset formats: a text plus labelled ``[start, end)`` character spans, turned into tokens and tags.

Formats:

* ``spacy``: spaCy v2 training JSON / tecoholic NER Annotator export,
  ``{"classes": [...], "annotations": [[text, {"entities": [[start, end, label], ...]}], null, ...]}``, or a bare
  list of ``[text, {"entities": ...}]`` pairs. ``null`` entries are skipped with a ``null-entry`` finding.
* ``doccano``: JSON Lines, ``{"text": ..., "label": [[start, end, label], ...]}`` (older exports) or
  ``{"text": ..., "entities": [{"start_offset": s, "end_offset": e, "label": l}, ...]}`` (newer ones).
* ``labelstudio``: a Label Studio JSON export, a list of tasks
  ``{"id", "data": {"text": ...}, "annotations": [{"result": [{"value": {"start", "end", "labels": [l]}}]}]}``
  (the first annotation that was not cancelled is used), or the JSON-min export ``[{"text", "label": [...]}]``.

**Offset units.** Python counts characters in code points; JavaScript front ends (Label Studio's, doccano's) may
count UTF-16 code units, where every character past U+FFFF (emoji, some CJK) counts twice. The two agree until the
first such character. Each file's unit is decided from the records where they differ (:func:`decide_offset_unit`:
quoted span texts first, then which reading puts span edges on word edges), stated as an ``offset-unit`` finding,
and UTF-16 offsets are converted to code points.

The text is split by :func:`~nerforge.data.readers.tokenize.tokenize_v2` (``nerforge.words.v2``); each span tags the tokens it touches
(IOB2, the label as the type). A span boundary inside a token is a ``span-cuts-token`` finding and the whole token
joins the span. Spans out of range, empty, overlapping, or sharing a token after tokenisation raise. Long texts
stay one example: windowing is the model's job.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace
from typing import Any

from nerforge.data.layers import flatten
from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.source import JsonItem, Source, parse_json_document, parse_json_value, split_lines
from nerforge.data.readers.tokenize import tokenize_v2 as tokenize
from nerforge.data.schemes import spans_to_tags
from nerforge.errors import DataFormatError, quote
from nerforge.tags import IOB2
from nerforge.types import Example, Finding, Span


@dataclass(frozen=True, order=True)
class CharSpan:
    """A labelled half-open character range ``[start, end)``, in a layer (``""``: the only one)."""

    start: int
    end: int
    label: str
    layer: str = ""


def parse_char_span(raw: Any, path: str, line: int) -> CharSpan:
    """A span from ``[s, e, label]`` or ``{"start"/"start_offset", "end"/"end_offset", "label" | "labels"}``.

    Raises:
        DataFormatError: another shape, non-integer offsets or a missing label.
    """
    if isinstance(raw, (list, tuple)) and len(raw) >= 3:
        start, end, label = raw[0], raw[1], raw[2]
    elif isinstance(raw, dict):
        start = raw.get("start_offset", raw.get("start"))
        end = raw.get("end_offset", raw.get("end"))
        label = raw.get("label")
        labels = raw.get("labels")
        if label is None and isinstance(labels, list) and labels:
            label = labels[0]
    else:
        raise DataFormatError(path, line, f"a span is {quote(raw)}", "[start, end, label] or {start, end, label}")
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise DataFormatError(path, line, f"span {name} offset {quote(value)} is not an integer", "integer offsets")
    if not isinstance(label, str) or not label.strip():
        raise DataFormatError(path, line, f"span [{start}, {end}) has label {label!r}", "a non-empty label")
    return CharSpan(start, end, label)


def char_spans_to_example(
    text: str,
    spans: list[CharSpan],
    *,
    path: str,
    line: int,
    doc_id: str | None,
    findings: list[Finding],
    layers: tuple[str, ...] | None = None,
) -> Example | None:
    """Tokenise ``text`` and tag the tokens under ``spans`` in IOB2 (``None`` when the text has no tokens).

    Spans may overlap (nested, crossing, or in different layers): the tags then hold the flat view of the first
    layer's spans (:func:`nerforge.data.layers.flatten`: the outermost kept) and the example's ``spans`` every span,
    with ``layers`` (the file's layers, in order) as the example's layers.

    Raises:
        DataFormatError: a span out of range or empty, two spans that do not overlap but share a token after
            tokenisation, or a span over whitespace only.
    """
    n = len(text)
    every = sorted(set(spans))
    for s in every:
        if not 0 <= s.start < s.end <= n:
            raise DataFormatError(
                path,
                line,
                f"span [{s.start}, {s.end}) {s.label} is outside the text or empty ({n} characters)",
                "0 <= start < end <= len(text)",
            )
    triples = tokenize(text)
    if not triples:
        if every:
            raise DataFormatError(path, line, "spans on a text with no tokens", "a text with words")
        return None
    tokens = tuple(t for t, _, _ in triples)
    starts = [s for _, s, _ in triples]
    ends = [e for _, _, e in triples]
    overlapping = any(a.end > b.start for a, b in zip(every, every[1:], strict=False))
    if overlapping or layers:
        return _layered_example(text, every, tokens, starts, ends, path=path, line=line, doc_id=doc_id,
                                findings=findings, layers=layers)  # fmt: skip
    tags = ["O"] * len(tokens)
    prev: CharSpan | None = None
    prev_last = -1
    for s in every:
        first, last = _token_range(text, s, starts, ends, path, line)
        if prev is not None and first <= prev_last:
            raise DataFormatError(
                path,
                line,
                f"spans {quote(text[prev.start : prev.end])} and {quote(text[s.start : s.end])} share the token "
                f"{quote(tokens[first])} after tokenisation",
                "spans that end between words",
            )
        _cut_finding(text, s, first, last, starts, ends, path, line, findings)
        for k, letter in enumerate(IOB2.chunk_letters(last - first + 1)):
            tags[first + k] = IOB2.spell(letter, s.label)
        prev, prev_last = s, last
    return Example(
        tokens,
        tuple(tags),
        doc_id=doc_id,
        offsets=tuple(zip(starts, ends, strict=True)),
        text=text,
        source=path,
        line=line,
    )


def _token_range(text: str, s: CharSpan, starts: list[int], ends: list[int], path: str, line: int) -> tuple[int, int]:
    """The first and last token a span touches.

    Raises:
        DataFormatError: the span covers no token (whitespace only).
    """
    first = bisect.bisect_right(ends, s.start)
    last = bisect.bisect_left(starts, s.end) - 1
    if first > last:
        raise DataFormatError(path, line, f"span [{s.start}, {s.end}) {s.label} {quote(text[s.start : s.end])} covers "
                              "no token", "spans over words")  # fmt: skip
    return first, last


def _cut_finding(
    text: str,
    s: CharSpan,
    first: int,
    last: int,
    starts: list[int],
    ends: list[int],
    path: str,
    line: int,
    findings: list[Finding],
) -> None:
    if starts[first] < s.start or ends[last] > s.end:
        findings.append(
            Finding(
                "span-cuts-token",
                path,
                line,
                f"span {quote(text[s.start : s.end])} [{s.start}, {s.end}) {s.label} cuts through "
                f"{quote(text[starts[first] : ends[last]])}; the whole token is tagged",
            )
        )


def _layered_example(
    text: str,
    every: list[CharSpan],
    tokens: tuple[str, ...],
    starts: list[int],
    ends: list[int],
    *,
    path: str,
    line: int,
    doc_id: str | None,
    findings: list[Finding],
    layers: tuple[str, ...] | None,
) -> Example:
    """An example whose spans overlap or come in layers: every span by the words it touches, in ``spans``; the tags
    the flat view of the first layer's (:func:`nerforge.data.layers.flatten`, at the word level, so spans that
    share a word after tokenisation are kept too)."""
    found = set()
    for s in every:
        first, last = _token_range(text, s, starts, ends, path, line)
        _cut_finding(text, s, first, last, starts, ends, path, line, findings)
        found.add(Span(first, last + 1, s.label, s.layer))
    spans = tuple(sorted(found))
    first_layer = layers[0] if layers else ""
    tags = spans_to_tags(flatten(s for s in spans if s.layer == first_layer), len(tokens))
    return Example(tokens, tuple(tags), doc_id=doc_id, offsets=tuple(zip(starts, ends, strict=True)), text=text,
                   source=path, line=line, spans=spans, layers=layers)  # fmt: skip


@dataclass
class _Pending:
    """A record read but not yet tokenised: its spans' unit is decided over the whole file first."""

    text: str
    spans: list[CharSpan]
    line: int
    doc_id: str | None
    quotes: list[str | None]  # the span texts the file states (Label Studio's value.text), where given


UNITS = ("codepoint", "utf16")


def utf16_to_codepoint(text: str) -> list[int | None]:
    """``m[u]``: the code-point offset at UTF-16 offset ``u`` (``None`` inside a surrogate pair), ``u`` in 0..len16."""
    mapping: list[int | None] = []
    for i, ch in enumerate(text):
        mapping.append(i)
        if ord(ch) > 0xFFFF:
            mapping.append(None)
    mapping.append(len(text))
    return mapping


def _convert(span: CharSpan, mapping: list[int | None]) -> CharSpan | None:
    if not (0 <= span.start < len(mapping) and 0 <= span.end < len(mapping)):
        return None
    start, end = mapping[span.start], mapping[span.end]
    if start is None or end is None:
        return None
    return CharSpan(start, end, span.label, span.layer)


def _edge_score(text: str, span: CharSpan | None, stated: str | None) -> int:
    """How well a reading of one span fits: a matching quoted text counts most, then span edges on word edges."""
    if span is None or not 0 <= span.start < span.end <= len(text):
        return -100
    piece = text[span.start : span.end]
    if stated is not None:
        return 50 if piece == stated else -50
    score = 0
    score += (
        1
        if not piece[0].isspace() and (span.start == 0 or not text[span.start - 1].isalnum() or not piece[0].isalnum())
        else -1
    )
    score += (
        1
        if not piece[-1].isspace()
        and (span.end == len(text) or not text[span.end].isalnum() or not piece[-1].isalnum())
        else -1
    )
    return score


def decide_offset_unit(records: list[_Pending], path: str, findings: list[Finding]) -> str:
    """``"codepoint"`` or ``"utf16"`` for the offsets of a whole file, stated as an ``offset-unit`` finding.

    Only records with a character past U+FFFF before a span's end can tell the units apart; without any, offsets
    are read as code points (both units agree there).
    """
    votes = {"codepoint": 0, "utf16": 0}
    deciding = 0
    first_line: int | None = None
    for rec in records:
        if rec.text.isascii() or all(ord(c) <= 0xFFFF for c in rec.text):
            continue
        mapping = utf16_to_codepoint(rec.text)
        for span, stated in zip(rec.spans, rec.quotes, strict=True):
            as_utf16 = _convert(span, mapping)
            if as_utf16 == span:
                continue  # before the first astral character: both readings agree
            deciding += 1
            first_line = rec.line if first_line is None else first_line
            votes["codepoint"] += _edge_score(rec.text, span, stated)
            votes["utf16"] += _edge_score(rec.text, as_utf16, stated)
    if not deciding:
        return "codepoint"
    unit = "utf16" if votes["utf16"] > votes["codepoint"] else "codepoint"
    what = (
        "UTF-16 code units (as JavaScript counts; converted to code points)"
        if unit == "utf16"
        else "code points (as Python counts)"
    )
    findings.append(
        Finding(
            "offset-unit",
            path,
            first_line,
            f"character offsets are {what}: decided on {deciding} span(s) after characters past U+FFFF "
            f"(emoji and the like), where the two units differ",
            "info" if votes["utf16"] != votes["codepoint"] else "warning",
        )
    )
    return unit


def _finish(records: list[_Pending], path: str, findings: list[Finding]) -> list[Example]:
    """Decide the file's offset unit, convert the spans, check quoted span texts, and tokenise every record."""
    unit = decide_offset_unit(records, path, findings)
    examples: list[Example] = []
    # layers: Label Studio's <Labels> controls (a span's from_name) when a file uses more than one, in file order
    names = tuple(dict.fromkeys(s.layer for rec in records for s in rec.spans))
    layers = names if len(names) > 1 else None
    for rec in records:
        spans = rec.spans if layers else [replace(s, layer="") for s in rec.spans]
        if unit == "utf16" and not all(ord(c) <= 0xFFFF for c in rec.text):
            mapping = utf16_to_codepoint(rec.text)
            converted = []
            for span in spans:
                new = _convert(span, mapping)
                if new is None:
                    raise DataFormatError(
                        path,
                        rec.line,
                        f"UTF-16 span [{span.start}, {span.end}) {span.label} is out of range or splits a character",
                        "offsets on character boundaries",
                    )
                converted.append(new)
            spans = converted
        for span, stated in zip(spans, rec.quotes, strict=True):
            if (
                stated is not None
                and 0 <= span.start < span.end <= len(rec.text)
                and rec.text[span.start : span.end] != stated
            ):
                raise DataFormatError(
                    path,
                    rec.line,
                    f"span [{span.start}, {span.end}) holds {quote(rec.text[span.start : span.end])}, "
                    f"not {quote(stated)}",
                    "offsets that match the span text",
                )
        example = char_spans_to_example(
            rec.text, spans, path=path, line=rec.line, doc_id=rec.doc_id, findings=findings, layers=layers
        )
        _add(examples, example, findings, path, rec.line)
    return examples


def _spans(raw: Any, path: str, line: int, what: str) -> list[CharSpan]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise DataFormatError(path, line, f"{what} is {type(raw).__name__}", "a list of spans")
    return [parse_char_span(r, path, line) for r in raw]


def _text(value: Any, path: str, line: int) -> str:
    if not isinstance(value, str):
        raise DataFormatError(path, line, f"the text is {type(value).__name__}", "a string")
    return value


def _add(examples: list[Example], example: Example | None, findings: list[Finding], path: str, line: int) -> None:
    if example is None:
        findings.append(Finding("empty-record", path, line, "a text with no tokens (skipped)", "info"))
    else:
        examples.append(example)


def read_spacy(source: Source, options: ReadOptions) -> tuple[list[Example], list[Finding]]:
    """Read spaCy v2 / tecoholic annotator JSON (see the module docstring)."""
    path = source.path
    doc = parse_json_document(source)
    items = doc.items if doc.items is not None else doc.field_items.get("annotations")
    if items is None:
        raise DataFormatError(path, 1, "no 'annotations' list", '{"annotations": [[text, {"entities": [...]}], ...]}')
    pending: list[_Pending] = []
    findings: list[Finding] = []
    for number, item in enumerate(items):
        entry, line = item.value, item.line
        if entry is None:
            findings.append(Finding("null-entry", path, line, f"annotation {number} is null (skipped)"))
            continue
        if isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[1], dict):
            text, spans_raw = entry[0], entry[1].get("entities")
        elif isinstance(entry, dict) and "text" in entry:
            text, spans_raw = entry["text"], entry.get("entities")
        else:
            raise DataFormatError(
                path, line, f"annotation {number} has an unknown shape", '[text, {"entities": [...]}]'
            )
        spans = _spans(spans_raw, path, line, "entities")
        pending.append(_Pending(_text(text, path, line), spans, line, str(number), [None] * len(spans)))
    return _finish(pending, path, findings), findings


def read_doccano(source: Source, options: ReadOptions) -> tuple[list[Example], list[Finding]]:
    """Read doccano JSON Lines (see the module docstring)."""
    path = source.path
    lines, findings = split_lines(source)
    pending: list[_Pending] = []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        record = parse_json_value(source, line, no - 1)
        if record is None:
            findings.append(Finding("null-entry", path, no, "a null record (skipped)"))
            continue
        if not isinstance(record, dict) or "text" not in record:
            raise DataFormatError(path, no, "a record without a 'text' field", '{"text": ..., "label": [[s, e, l]]}')
        key = next((k for k in ("label", "labels", "entities", "spans") if k in record), None)
        spans = _spans(record.get(key) if key else None, path, no, repr(key))
        doc = record.get(options.doc_column or "id")
        text = _text(record["text"], path, no)
        pending.append(_Pending(text, spans, no, None if doc is None else str(doc), [None] * len(spans)))
    return _finish(pending, path, findings), findings


def read_labelstudio(source: Source, options: ReadOptions) -> tuple[list[Example], list[Finding]]:
    """Read a Label Studio JSON (or JSON-min) export (see the module docstring)."""
    path = source.path
    doc = parse_json_document(source)
    if doc.items is None:
        raise DataFormatError(path, 1, "the export is not a JSON list of tasks", '[{"data": {"text": ...}, ...}]')
    pending: list[_Pending] = []
    findings: list[Finding] = []
    for item in doc.items:
        record = _labelstudio_task(item, path, findings)
        if record is not None:
            pending.append(record)
    return _finish(pending, path, findings), findings


def _labelstudio_task(item: JsonItem, path: str, findings: list[Finding]) -> _Pending | None:
    """One task as a pending record; ``None`` when the task is skipped (already reported)."""
    task, line = item.value, item.line
    if task is None:
        findings.append(Finding("null-entry", path, line, "a null task (skipped)"))
        return None
    if not isinstance(task, dict):
        raise DataFormatError(path, line, f"a task is a {type(task).__name__}", "a JSON object per task")
    doc_id = None if task.get("id") is None else str(task.get("id"))
    if "data" not in task:  # JSON-min export
        if "text" not in task:
            raise DataFormatError(path, line, "a task with neither 'data' nor 'text'", '{"data": {"text": ...}}')
        spans = _spans(task.get("label"), path, line, "'label'")
        return _Pending(_text(task["text"], path, line), spans, line, doc_id, [None] * len(spans))
    data = task["data"]
    if not isinstance(data, dict):
        raise DataFormatError(path, line, "'data' is not an object", '{"data": {"text": ...}}')
    texts = [v for v in data.values() if isinstance(v, str)]
    text = data["text"] if "text" in data else (texts[0] if len(texts) == 1 else None)
    if text is None:
        raise DataFormatError(path, line, f"cannot tell the text field among {sorted(data)}", "data.text")
    annotations = task.get("annotations") or []
    if not isinstance(annotations, list):
        raise DataFormatError(path, line, "'annotations' is not a list", "a list of annotations")
    chosen = next((a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled")), None)
    if chosen is None:
        findings.append(Finding("unannotated-task", path, line, f"task {doc_id} has no annotation (skipped)"))
        return None
    results = chosen.get("result") or []
    if not isinstance(results, list):
        raise DataFormatError(path, line, "'result' is not a list", "a list of results")
    spans = []
    quotes: list[str | None] = []
    for r in results:
        value = r.get("value") if isinstance(r, dict) else None
        if not isinstance(value, dict) or "start" not in value or "labels" not in value:
            findings.append(
                Finding("non-span-result", path, line, f"task {doc_id}: a result that is no span (skipped)")
            )
            continue
        span = parse_char_span(value, path, line)
        if isinstance(r.get("from_name"), str):
            span = replace(span, layer=r["from_name"])
        if isinstance(value["labels"], list) and len(value["labels"]) > 1:
            findings.append(Finding("multiple-labels", path, line, f"span {value['labels']}: the first label is used"))
        quoted = value.get("text")
        spans.append(span)
        quotes.append(quoted if isinstance(quoted, str) else None)
    return _Pending(_text(text, path, line), spans, line, doc_id, quotes)
