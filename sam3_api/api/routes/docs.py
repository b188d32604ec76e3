"""/docs (Swagger UI) and /redoc (ReDoc) served entirely from this server: no CDN, no web fonts.

FastAPI's own pages load their scripts from cdn.jsdelivr.net and ReDoc's fonts from Google, so on a GPU box
in a private network they stay blank, and every visitor's browser is sent to third parties. The same two
pages are built here with FastAPI's HTML helpers over the asset files of the pinned `fastapi-offline`
package (Swagger UI's bundle, ReDoc's standalone bundle, a favicon), served under /docs/assets/.
create_app() turns FastAPI's defaults off (docs_url=None, redoc_url=None) and includes this router.

The routes are plain Starlette routes, as FastAPI's own docs routes are: they stay out of /openapi.json and
out of the app-wide dependencies (rate limits). api/auth.py keeps them and their assets open.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSETS_URL = "/docs/assets"
# validatorUrl: Swagger UI would otherwise show a badge image fetched from validator.swagger.io.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}
# The pages may load and call this origin only. ReDoc's side menu always shows Redocly's logo from
# cdn.redoc.ly (it hides the image when that fails): this policy keeps the browser from even trying, and
# catches any later asset version that would reach out. The inline allowances are the two bundles' own needs
# (FastAPI's inline start-up script, inline styles of both); ReDoc runs its search in a blob: worker.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; "
                           "frame-ancestors 'self'")

router = APIRouter()
router.mount(ASSETS_URL, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")


def _root(request: Request) -> str:
    """The path prefix the server is mounted under behind a proxy (--root-path), so the pages' URLs work there."""
    return request.scope.get("root_path", "").rstrip("/")


def _confined(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page


async def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    return _confined(get_swagger_ui_html(
        openapi_url=root + request.app.openapi_url, title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js", swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png", oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
        swagger_ui_parameters={**SWAGGER_UI_PARAMETERS, **(request.app.swagger_ui_parameters or {})},
    ))


async def swagger_ui_oauth2_redirect(request: Request) -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


async def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    return _confined(get_redoc_html(
        openapi_url=root + request.app.openapi_url, title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js", redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        with_google_fonts=False,
    ))


router.add_route(DOCS_URL, swagger_ui, include_in_schema=False)
router.add_route(OAUTH2_REDIRECT_URL, swagger_ui_oauth2_redirect, include_in_schema=False)
router.add_route(REDOC_URL, redoc, include_in_schema=False)
