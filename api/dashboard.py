"""The dashboard at `/`: one static page (api/static/) that reads only the public GraphQL
API, like any third-party frontend would, and Chart.js from the pinned npm package.

Chart.js is looked up beside the page first (`api/static/vendor/`, where the Docker image
and a built wheel carry it) and then in the source tree's `node_modules/` (`make install`),
so nothing is fetched at run time and the page works offline.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().with_name("static")
CHART_JS = "chart.umd.min.js"
CHART_JS_URL = f"/static/vendor/{CHART_JS}"
_SOURCE_TREE = Path(__file__).resolve().parents[1]

# Everything the page loads comes from this server: a CDN reference would be refused.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def chart_js_path() -> Path | None:
    """Where Chart.js is on this installation, or None when it is not installed."""
    candidates = (
        STATIC_DIR / "vendor" / CHART_JS,
        _SOURCE_TREE / "node_modules" / "chart.js" / "dist" / CHART_JS,
    )
    return next((p for p in candidates if p.is_file()), None)


async def index(request: Request) -> Response:
    """The page itself; revalidated on every load so an upgrade shows at once."""
    return FileResponse(
        STATIC_DIR / "index.html",
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def chart_js(request: Request) -> Response:
    """The pinned Chart.js build; a 404 that says how to install it otherwise."""
    path = chart_js_path()
    if path is None:
        return PlainTextResponse(
            "Chart.js is not installed: run `make install` (npm package chart.js)\n",
            status_code=404,
        )
    return FileResponse(
        path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=3600"}
    )


def dashboard_routes() -> list[BaseRoute]:
    """`/` and `/static/...`, for the API's router."""
    return [
        Route("/", index, methods=["GET", "HEAD"]),
        Route(CHART_JS_URL, chart_js, methods=["GET", "HEAD"]),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
