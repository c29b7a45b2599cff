"""One plain sentence for each way a JSON request body can be wrong.

FastAPI validates ``{"text": ...} | {"texts": [...]}`` against both shapes and reports the first shape's complaint,
so ``{"texts": "x"}`` came back as "body.TextRequest.text: Field required". These functions look at the body the
client sent and say what is wrong with it in the client's terms: which field, what it holds, what was expected.
Pure functions of the decoded body (``None`` when they have nothing better to say than pydantic).
"""

from __future__ import annotations

from typing import Any

# Route -> (the fields it takes, each with the JSON type it must have, exactly one of them required).
SHAPES: dict[str, dict[str, str]] = {
    "/v1/entities": {"text": "string", "texts": "list of strings"},
    "/v1/entities/url": {"url": "string"},
}
UPLOADS = frozenset({"/v1/jobs", "/v1/entities/csv"})
UPLOAD_TEXT = 'a multipart/form-data upload with the CSV file in the field "file" (curl -F file=@data.csv URL)'
SHAPE_TEXT = {
    "/v1/entities": '{"text": "..."} or {"texts": ["...", ...]}',
    "/v1/entities/url": '{"url": "https://..."}',
}


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, with an article: ``a string``, ``an object``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _field_problem(name: str, expected: str, value: Any) -> str | None:
    if expected == "string":
        return None if isinstance(value, str) else f'"{name}" must be a string, got {json_type(value)}'
    if not isinstance(value, list):
        return f'"{name}" must be a list of strings, got {json_type(value)}'
    for i, item in enumerate(value):
        if not isinstance(item, str):
            return f'"{name}"[{i}] must be a string, got {json_type(item)}'
    return None


def upload_problem(path: str, errors: list[dict[str, Any]]) -> str | None:
    """What is wrong with an upload to ``path`` that has no ``file`` field, or ``None``."""
    if path in UPLOADS and any(tuple(e.get("loc", ())) == ("body", "file") for e in errors):
        return f"the body must be {UPLOAD_TEXT}"
    return None


def body_problem(path: str, body: Any) -> str | None:
    """What is wrong with ``body`` for the route at ``path``, or ``None`` (unknown route, or nothing found)."""
    fields = SHAPES.get(path)
    if fields is None:
        return None
    shape = SHAPE_TEXT[path]
    if not isinstance(body, dict):
        return f"the body must be a JSON object, {shape}; got {json_type(body)}"
    unknown = [key for key in body if key not in fields]
    if unknown:
        return f'unknown field "{unknown[0]}"; the body must be {shape}'
    given = [key for key in fields if key in body]
    if not given:
        return f"the body has none of the fields it needs; it must be {shape}"
    if len(given) > 1:
        listed = " and ".join(f'"{key}"' for key in given)
        return f"the body has both {listed}; send one of them: {shape}"
    return _field_problem(given[0], fields[given[0]], body[given[0]])
