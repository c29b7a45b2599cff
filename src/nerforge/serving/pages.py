"""The routes that serve pages and files, not data: the web page (``/``), its static files, the favicon, and the
API documentation (``/docs``: Swagger UI from the ``fastapi-offline`` package's bundled copy, so it works without
a network; FastAPI's own ``/docs`` loads Swagger UI from a CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from nerforge.serving.guards import SECURITY_HEADERS

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Swagger UI sets style attributes from its script: the docs page alone allows inline styles (never scripts).
DOCS_CSP = SECURITY_HEADERS["content-security-policy"].replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


def swagger_assets() -> Path | None:
    """The folder with ``swagger-ui-bundle.js`` and ``swagger-ui.css``, or ``None`` without ``fastapi-offline``."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    folder = Path(fastapi_offline.__file__).resolve().parent / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def add_page_routes(app: FastAPI) -> None:
    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")

    @app.api_route("/favicon.ico", methods=["GET", "HEAD"], include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "favicon.svg", media_type="image/svg+xml", headers={"cache-control": "max-age=86400"}
        )

    assets = swagger_assets()

    @app.api_route("/docs", methods=["GET", "HEAD"], include_in_schema=False)
    async def docs() -> Response:
        if assets is None:
            text = (
                "The API documentation page needs the fastapi-offline package (pip install 'nerforge[serve]'). "
                "The API spec is at /openapi.json.\n"
            )
            return Response(text, status_code=404, media_type="text/plain; charset=utf-8")
        return FileResponse(
            STATIC_DIR / "docs.html",
            media_type="text/html; charset=utf-8",
            headers={"content-security-policy": DOCS_CSP},
        )

    if assets is not None:
        app.mount("/docs/assets", StaticFiles(directory=assets), name="docs-assets")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
