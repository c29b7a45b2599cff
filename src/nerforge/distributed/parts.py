"""Output of distributed prediction: numbered part files that make a run resumable, merged into one file at the end.

Layout, for ``--output OUT`` (local path or fsspec URL)::

    OUT.parts/plan.json                 the job (input files with size and modification stamp, model, options)
                                        and its parts (file, byte or row range, first row index)
    OUT.parts/part-000042.jsonl         the results of part 42, in the output format (.jsonl, .csv rows, .parquet)
    OUT.parts/part-000042.done.json     written after the part file: rows, entity counts, seconds, worker

A part is complete when its ``.done.json`` exists; both files are written under a temporary name and renamed, so
a killed worker leaves no half part. A rerun with the same job skips complete parts; a rerun whose job differs
(another input, model or option) discards the old parts. After the merge ``OUT.parts`` is removed, unless kept.

The merged file is byte for byte what ``nerforge predict`` writes: JSONL lines and CSV rows come from the same
functions (:func:`nerforge.prediction.io.record_to_json`, :func:`~nerforge.prediction.io.record_to_row`), and parts
are concatenated in part order, which is input order.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from nerforge.distributed.io import Part, Plan, is_local, url_to_fs
from nerforge.errors import UsageError
from nerforge.io_utils import atomic_open
from nerforge.prediction.io import InputRecord, csv_columns, escape_cell, record_to_json, record_to_row
from nerforge.types import Entity

logger = logging.getLogger(__name__)

OUTPUT_FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}
PLAN_FILE = "plan.json"
PLAN_VERSION = 1
_COPY_BYTES = 1 << 20


def output_format(url: str) -> str:
    for suffix, fmt in OUTPUT_FORMATS.items():
        if url.lower().endswith(suffix):
            return fmt
    raise UsageError(f"{url}: unknown output format; name the output *.jsonl, *.csv or *.parquet")


def parts_dir(output: str) -> str:
    return output.rstrip("/") + ".parts"


def output_columns(plan: Plan) -> list[str]:
    """CSV output columns, as ``nerforge predict`` picks them: the input's own columns for CSV (and Parquet)
    inputs, ``id, text`` otherwise; ``entities`` last."""
    own = plan.fmt in ("csv", "parquet") and plan.columns is not None and plan.rows > 0
    first = InputRecord(0, "", None, dict.fromkeys(plan.columns or ())) if own else None
    return csv_columns(first, own)


@contextlib.contextmanager
def atomic_output(url: str) -> Iterator[IO[bytes]]:
    """A binary file that appears at ``url`` whole, or not at all (temporary name, then rename)."""
    fs, path = url_to_fs(url)
    if is_local(fs):
        with atomic_open(path, "wb") as fh:
            yield fh
        return
    parent, _, name = path.rpartition("/")
    tmp = f"{parent}/.{name}.{uuid.uuid4().hex}.tmp"
    try:
        with fs.open(tmp, "wb") as fh:
            yield fh
        fs.mv(tmp, path)
    except BaseException:
        with contextlib.suppress(Exception):
            fs.rm(tmp)
        raise


@dataclass
class PartResult:
    """What one part produced (the content of its ``.done.json``)."""

    index: int
    rows: int
    entities: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    worker: str = ""

    def to_json(self) -> str:
        return json.dumps({**self.__dict__, "entities": dict(self.entities)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PartResult:
        raw = json.loads(text)
        return cls(
            raw["index"], raw["rows"], Counter(raw.get("entities", {})), raw.get("seconds", 0.0), raw.get("worker", "")
        )


class PartStore:
    """The ``OUT.parts`` folder of one job."""

    def __init__(self, output: str) -> None:
        self.output = output
        self.fmt = output_format(output)
        self.url = parts_dir(output)
        self.fs, self.path = url_to_fs(self.url)

    def data_url(self, index: int) -> str:
        return f"{self.url}/part-{index:06d}.{self.fmt}"

    def done_url(self, index: int) -> str:
        return f"{self.url}/part-{index:06d}.done.json"

    # -- the plan --------------------------------------------------------------------------------------------

    def load_plan(self, job: dict[str, Any]) -> Plan | None:
        """The saved plan when it was made for the same ``job``; stale parts of another job are removed."""
        plan_url = f"{self.url}/{PLAN_FILE}"
        if not self.fs.exists(f"{self.path}/{PLAN_FILE}"):
            if self.fs.exists(self.path):
                self.clear()
            return None
        with self.fs.open(f"{self.path}/{PLAN_FILE}", "r", encoding="utf-8") as fh:
            saved = json.load(fh)
        if saved.get("version") != PLAN_VERSION or saved.get("job") != job:
            logger.warning("%s holds parts of another job (input, model or options changed); starting over", self.url)
            self.clear()
            return None
        columns = saved.get("columns")
        parts = [Part.from_json(json.dumps(p)) for p in saved["parts"]]
        logger.debug("reusing the plan in %s", plan_url)
        return Plan(saved["fmt"], parts, tuple(columns) if columns is not None else None)

    def save_plan(self, job: dict[str, Any], plan: Plan) -> None:
        self.fs.makedirs(self.path, exist_ok=True)
        body = {
            "version": PLAN_VERSION,
            "job": job,
            "fmt": plan.fmt,
            "columns": list(plan.columns) if plan.columns is not None else None,
            "parts": [json.loads(p.to_json()) for p in plan.parts],
        }
        with atomic_output(f"{self.url}/{PLAN_FILE}") as fh:
            fh.write((json.dumps(body, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.path, recursive=True)

    # -- parts -------------------------------------------------------------------------------------------------

    def completed(self) -> dict[int, PartResult]:
        """Results of the parts already done, by part index."""
        done: dict[int, PartResult] = {}
        if not self.fs.exists(self.path):
            return done
        for path in self.fs.glob(f"{self.path}/part-*.done.json"):
            with self.fs.open(path, "r", encoding="utf-8") as fh:
                result = PartResult.from_json(fh.read())
            done[result.index] = result
        return done

    def write_part(
        self, index: int, pairs: Iterable[tuple[InputRecord, Sequence[Entity]]], columns: Sequence[str]
    ) -> PartResult:
        """Write the results of one part, then its ``.done.json``."""
        result = PartResult(index, 0)
        with atomic_output(self.data_url(index)) as fh:
            if self.fmt == "parquet":
                rows = []
                for record, entities in pairs:
                    rows.append(record_to_json(record, entities))
                    result.entities.update(e.label for e in entities)
                write_parquet_rows(fh, rows)
                result.rows = len(rows)
            else:
                text = io.TextIOWrapper(fh, encoding="utf-8", newline="", write_through=True)
                writer = csv.writer(text) if self.fmt == "csv" else None
                for record, entities in pairs:
                    if writer is not None:
                        writer.writerow(record_to_row(record, entities, columns))
                    else:
                        text.write(json.dumps(record_to_json(record, entities), ensure_ascii=False, default=str) + "\n")
                    result.entities.update(e.label for e in entities)
                    result.rows += 1
                text.flush()
                text.detach()
        return result

    def mark_done(self, result: PartResult) -> None:
        with atomic_output(self.done_url(result.index)) as fh:
            fh.write(result.to_json().encode("utf-8"))

    # -- merge ---------------------------------------------------------------------------------------------------

    def merge(self, parts: Sequence[Part], columns: Sequence[str]) -> None:
        """Concatenate the parts, in order, into the output file (atomically)."""
        with atomic_output(self.output) as out:
            if self.fmt == "parquet":
                merge_parquet(out, [self.data_url(p.index) for p in parts])
                return
            if self.fmt == "csv":
                header = io.StringIO(newline="")
                csv.writer(header).writerow([escape_cell(c) for c in columns])
                out.write(header.getvalue().encode("utf-8"))
            for part in parts:
                fs, path = url_to_fs(self.data_url(part.index))
                with fs.open(path, "rb") as fh:
                    while chunk := fh.read(_COPY_BYTES):
                        out.write(chunk)


# -- parquet ----------------------------------------------------------------------------------------------------


def _entities_type() -> Any:
    import pyarrow as pa

    entity = pa.struct(
        [
            ("text", pa.string()),
            ("label", pa.string()),
            ("start", pa.int64()),
            ("end", pa.int64()),
            ("score", pa.float64()),
        ]
    )
    return pa.list_(entity)


def write_parquet_rows(fh: IO[bytes], rows: list[dict[str, Any]]) -> None:
    """Rows (``record_to_json`` objects) as a Parquet file: the columns in first-seen order, ``entities`` typed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names: dict[str, None] = dict.fromkeys(["id", "text", "entities"])
    for row in rows:
        names.update(dict.fromkeys(row))
    arrays, fields = [], []
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            array = pa.array(values, type=_entities_type() if name == "entities" else None)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise UsageError(
                f"field {name!r} cannot be stored in Parquet ({exc}); its values differ in type; write a .jsonl output"
            ) from None
        arrays.append(array)
        fields.append(pa.field(name, array.type))
    pq.write_table(pa.Table.from_arrays(arrays, schema=pa.schema(fields)), fh)


def _conform(table: Any, schema: Any) -> Any:
    import pyarrow as pa

    columns = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def merge_parquet(out: IO[bytes], urls: Sequence[str]) -> None:
    """Parquet part files into one file (schemas unified: a column missing or all-null in one part is fine)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schemas = []
    for url in urls:
        fs, path = url_to_fs(url)
        with fs.open(path, "rb") as fh:
            schemas.append(pq.read_schema(fh))
    if not schemas:
        empty = pa.schema([("id", pa.int64()), ("text", pa.string()), ("entities", _entities_type())])
        pq.write_table(empty.empty_table(), out)
        return
    try:
        schema = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise UsageError(f"the parts' columns differ in type ({exc}); write a .jsonl output instead") from None
    with pq.ParquetWriter(out, schema) as writer:
        for url in urls:
            fs, path = url_to_fs(url)
            with fs.open(path, "rb") as fh:
                writer.write_table(_conform(pq.read_table(fh), schema))
