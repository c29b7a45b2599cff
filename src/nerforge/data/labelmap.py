"""Rename, merge or drop entity types with a label map.

A label map is an ordered mapping from a type pattern to a new type, or to ``None`` to drop the type (its tokens
become ``O``). Keys are :mod:`fnmatch` globs, matched case-sensitively: an exact key wins, otherwise the first
matching pattern in the map's order; unmatched types are kept. ``{"*": "TECH"}`` collapses every type into one
(the tech-terms files' batch-named ``B-AI``, ``I-m1`` ... tags).

On the command line a map is ``"AI=TECH,*=TECH,MISC="`` (an empty value drops the type), or a JSON/YAML file
holding one object ``{"AI": "TECH", "MISC": null}``.

EXAMPLE:
    >>> apply_label_map(["B-AI", "I-m1", "O", "B-MISC"], {"MISC": None, "*": "TECH"})
    ['B-TECH', 'I-TECH', 'O', 'O']
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from nerforge.data.schemes import OUTSIDE, format_tag, parse_tag
from nerforge.errors import DataFormatError, UsageError

_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class LabelMap:
    """A compiled label map: exact keys first, then glob patterns in order. Lookups are cached."""

    exact: Mapping[str, str | None]
    patterns: tuple[tuple[str, str | None], ...]
    _cache: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str | None]) -> LabelMap:
        exact: dict[str, str | None] = {}
        patterns: list[tuple[str, str | None]] = []
        for key, value in mapping.items():
            target = value if value else None
            if _GLOB_CHARS & set(key):
                patterns.append((key, target))
            else:
                exact[key] = target
        return cls(exact, tuple(patterns))

    def map_type(self, type_: str) -> str | None:
        """The new name of ``type_`` (``None`` when it is dropped)."""
        if type_ in self._cache:
            return self._cache[type_]
        if type_ in self.exact:
            out = self.exact[type_]
        else:
            out = type_
            for pattern, target in self.patterns:
                if fnmatch.fnmatchcase(type_, pattern):
                    out = target
                    break
        self._cache[type_] = out
        return out

    def map_tag(self, tag: str) -> str:
        """Map the type of one tag, keeping its prefix and notation (``B-X`` or ``X_B``); bare tags are kept."""
        if tag == OUTSIDE:
            return tag
        parsed = parse_tag(tag, default_type="")
        if not parsed.type:
            return tag  # a bare B/I tag has no type to map
        new = self.map_type(parsed.type)
        if new is None:
            return OUTSIDE
        suffix = not tag[:2] == f"{parsed.prefix}-"
        return format_tag(parsed.prefix, new, "suffix" if suffix else "iob2")


def compile_label_map(label_map: Mapping[str, str | None] | LabelMap) -> LabelMap:
    """A :class:`LabelMap` from a plain mapping (or the map itself)."""
    return label_map if isinstance(label_map, LabelMap) else LabelMap.from_mapping(label_map)


def apply_label_map(tags: Sequence[str], label_map: Mapping[str, str | None] | LabelMap) -> list[str]:
    """Rename, merge or drop the types of ``tags`` (any scheme, prefix or suffix notation).

    Raises:
        TagSchemeError: a tag has no recognisable shape.
    """
    compiled = compile_label_map(label_map)
    return [compiled.map_tag(t) for t in tags]


def parse_label_map(spec: str) -> dict[str, str | None]:
    """Parse ``"AI=TECH,*=TECH,MISC="`` into an ordered mapping (empty value: drop the type).

    Raises:
        UsageError: an entry is not ``OLD=NEW``.
    """
    out: dict[str, str | None] = {}
    for raw in spec.split(","):
        entry = raw.strip()
        if not entry:
            continue
        if "=" not in entry:
            raise UsageError(f"label map entry {entry!r} has no '='; expected OLD=NEW, or OLD= to drop a type")
        key, value = (s.strip() for s in entry.split("=", 1))
        if not key:
            raise UsageError(f"label map entry {entry!r} has an empty key; expected OLD=NEW")
        out[key] = value or None
    if not out:
        raise UsageError(f"empty label map {spec!r}; expected e.g. 'AI=TECH,*=TECH,MISC='")
    return out


def load_label_map(spec: str | Path) -> dict[str, str | None]:
    """A label map from a JSON/YAML file (when ``spec`` names an existing file) or from a ``OLD=NEW,...`` string.

    Raises:
        DataFormatError: the file is not a JSON/YAML object of strings (or nulls).
        UsageError: the string is malformed.
    """
    path = Path(spec)
    looks_like_file = str(spec).lower().endswith((".json", ".yaml", ".yml"))
    if looks_like_file or (path.is_file() and "=" not in str(spec)):
        return _load_label_map_file(path)
    return parse_label_map(str(spec))


def _load_label_map_file(path: Path) -> dict[str, str | None]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(path, None, f"cannot read the label map: {exc}", "a UTF-8 JSON or YAML file") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFormatError(path, exc.lineno, f"invalid JSON: {exc.msg}", 'an object {"OLD": "NEW"}') from None
        except (ValueError, RecursionError) as exc:
            raise DataFormatError(path, None, f"invalid JSON: {exc}", 'an object {"OLD": "NEW"}') from None
    else:
        try:
            data = yaml.safe_load(text)
        except (yaml.YAMLError, ValueError, RecursionError) as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise DataFormatError(path, line, f"invalid YAML: {problem}", "a mapping OLD: NEW") from None
    if not isinstance(data, dict) or not data:
        raise DataFormatError(path, None, "the label map is not a non-empty object", 'an object {"OLD": "NEW" | null}')
    out: dict[str, str | None] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not (value is None or isinstance(value, str)):
            raise DataFormatError(
                path, None, f"label map entry {key!r}: {value!r} is not text", "string keys and string or null values"
            )
        out[key] = value or None
    return out
