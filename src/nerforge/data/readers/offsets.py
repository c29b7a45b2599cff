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

The text is split by :func:`~nerforge.data.readers.tokenize.tokenize_v2` (``nerforge.words.v2``); each span tags the tokens it touches
(IOB2, the label as the type). A span boundary inside a token is a ``span-cuts-token`` finding and the whole token
joins the span. Spans out of range, empty, overlapping, or sharing a token after tokenisation raise. Long texts
stay one example: windowing is the model's job.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from nerforge.data.readers.options import ReadOptions
from nerforge.data.readers.source import JsonItem, Source, parse_json_document, parse_json_value, split_lines
from nerforge.data.readers.tokenize import tokenize_v2 as tokenize
from nerforge.errors import DataFormatError
from nerforge.types import Example, Finding


@dataclass(frozen=True, order=True)
class CharSpan:
    """A labelled half-open character range ``[start, end)``."""

    start: int
    end: int
    label: str


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
        raise DataFormatError(path, line, f"a span is {raw!r}", "[start, end, label] or {start, end, label}")
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise DataFormatError(path, line, f"span {name} offset {value!r} is not an integer", "integer offsets")
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
) -> Example | None:
    """Tokenise ``text`` and tag the tokens under ``spans`` in IOB2 (``None`` when the text has no tokens).

    Raises:
        DataFormatError: a span out of range or empty, two spans that overlap or share a token, or a span over
            whitespace only.
    """
    n = len(text)
    ordered = sorted(spans)
    for s in ordered:
        if not 0 <= s.start < s.end <= n:
            raise DataFormatError(
                path,
                line,
                f"span [{s.start}, {s.end}) {s.label} is outside the text or empty ({n} characters)",
                "0 <= start < end <= len(text)",
            )
    triples = tokenize(text)
    if not triples:
        if ordered:
            raise DataFormatError(path, line, "spans on a text with no tokens", "a text with words")
        return None
    tokens = tuple(t for t, _, _ in triples)
    starts = [s for _, s, _ in triples]
    ends = [e for _, _, e in triples]
    tags = ["O"] * len(tokens)
    prev: CharSpan | None = None
    prev_last = -1
    for s in ordered:
        if prev is not None and s.start < prev.end:
            raise DataFormatError(
                path,
                line,
                f"spans [{prev.start}, {prev.end}) {prev.label} and [{s.start}, {s.end}) {s.label} overlap",
                "non-overlapping spans",
            )
        first = bisect.bisect_right(ends, s.start)
        last = bisect.bisect_left(starts, s.end) - 1
        if first > last:
            raise DataFormatError(
                path,
                line,
                f"span [{s.start}, {s.end}) {s.label} {text[s.start : s.end]!r} covers no token",
                "spans over words",
            )
        if prev is not None and first <= prev_last:
            raise DataFormatError(
                path,
                line,
                f"spans {text[prev.start : prev.end]!r} and {text[s.start : s.end]!r} share the token "
                f"{tokens[first]!r} after tokenisation",
                "spans that end between words",
            )
        if starts[first] < s.start or ends[last] > s.end:
            findings.append(
                Finding(
                    "span-cuts-token",
                    path,
                    line,
                    f"span {text[s.start : s.end]!r} [{s.start}, {s.end}) {s.label} cuts through "
                    f"{text[starts[first] : ends[last]]!r}; the whole token is tagged",
                )
            )
        tags[first] = f"B-{s.label}"
        for k in range(first + 1, last + 1):
            tags[k] = f"I-{s.label}"
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
    examples: list[Example] = []
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
        example = char_spans_to_example(
            _text(text, path, line),
            _spans(spans_raw, path, line, "entities"),
            path=path,
            line=line,
            doc_id=str(number),
            findings=findings,
        )
        _add(examples, example, findings, path, line)
    return examples, findings


def read_doccano(source: Source, options: ReadOptions) -> tuple[list[Example], list[Finding]]:
    """Read doccano JSON Lines (see the module docstring)."""
    path = source.path
    lines, findings = split_lines(source)
    examples: list[Example] = []
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
        example = char_spans_to_example(
            _text(record["text"], path, no),
            spans,
            path=path,
            line=no,
            doc_id=None if doc is None else str(doc),
            findings=findings,
        )
        _add(examples, example, findings, path, no)
    return examples, findings


def read_labelstudio(source: Source, options: ReadOptions) -> tuple[list[Example], list[Finding]]:
    """Read a Label Studio JSON (or JSON-min) export (see the module docstring)."""
    path = source.path
    doc = parse_json_document(source)
    if doc.items is None:
        raise DataFormatError(path, 1, "the export is not a JSON list of tasks", '[{"data": {"text": ...}, ...}]')
    examples: list[Example] = []
    findings: list[Finding] = []
    for item in doc.items:
        example = _labelstudio_task(item, path, findings)
        if example is not False:
            _add(examples, example, findings, path, item.line)
    return examples, findings


def _labelstudio_task(item: JsonItem, path: str, findings: list[Finding]) -> Example | None | bool:
    """One task as an example; ``False`` when the task is skipped (already reported)."""
    task, line = item.value, item.line
    if task is None:
        findings.append(Finding("null-entry", path, line, "a null task (skipped)"))
        return False
    if not isinstance(task, dict):
        raise DataFormatError(path, line, f"a task is a {type(task).__name__}", "a JSON object per task")
    doc_id = None if task.get("id") is None else str(task.get("id"))
    if "data" not in task:  # JSON-min export
        if "text" not in task:
            raise DataFormatError(path, line, "a task with neither 'data' nor 'text'", '{"data": {"text": ...}}')
        spans = _spans(task.get("label"), path, line, "'label'")
        return char_spans_to_example(
            _text(task["text"], path, line), spans, path=path, line=line, doc_id=doc_id, findings=findings
        )
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
        return False
    results = chosen.get("result") or []
    if not isinstance(results, list):
        raise DataFormatError(path, line, "'result' is not a list", "a list of results")
    spans = []
    for r in results:
        value = r.get("value") if isinstance(r, dict) else None
        if not isinstance(value, dict) or "start" not in value or "labels" not in value:
            findings.append(
                Finding("non-span-result", path, line, f"task {doc_id}: a result that is no span (skipped)")
            )
            continue
        span = parse_char_span(value, path, line)
        if isinstance(value["labels"], list) and len(value["labels"]) > 1:
            findings.append(Finding("multiple-labels", path, line, f"span {value['labels']}: the first label is used"))
        quoted = value.get("text")
        if (
            isinstance(quoted, str)
            and 0 <= span.start < span.end <= len(text)
            and text[span.start : span.end] != quoted
        ):
            raise DataFormatError(
                path,
                line,
                f"span [{span.start}, {span.end}) holds {text[span.start : span.end]!r}, not {quoted!r}",
                "offsets that match the span text",
            )
        spans.append(span)
    return char_spans_to_example(_text(text, path, line), spans, path=path, line=line, doc_id=doc_id, findings=findings)
