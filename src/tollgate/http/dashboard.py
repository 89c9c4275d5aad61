"""The dashboard (issue 15): `GET /dashboard`, one HTML page and its script and style, shipped in the package.

No build step and no framework: `dashboard_assets/` holds the page, a plain script that draws its
charts as inline SVG, and a style sheet, read once at start-up. The page keeps the key it is given
(a management key, a consumption key or the operator token) in the tab's sessionStorage only and
calls the gateway's public API with it (`Authorization: Bearer`), as any client would: it has no
endpoint of its own, and no secret ever travels in a URL (docs/dashboard.md).

Each answer carries a Content-Security-Policy that lets the page run only its own script and style
and talk only to this origin (no inline script, no frames, no form posts elsewhere).
"""

from __future__ import annotations

from importlib import resources

from tollgate.http.request import Request, Router, Send, send_bytes

ASSETS = {
    "/dashboard": ("index.html", b"text/html; charset=utf-8"),
    "/dashboard/static/app.js": ("app.js", b"text/javascript; charset=utf-8"),
    "/dashboard/static/style.css": ("style.css", b"text/css; charset=utf-8"),
}

CSP = (b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:;"
       b" base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),
]


def read_asset(name: str) -> bytes:
    return resources.files("tollgate.http").joinpath("dashboard_assets", name).read_bytes()


class Dashboard:
    def __init__(self) -> None:
        self.files = {path: (read_asset(name), [(b"content-type", kind), *SECURITY_HEADERS])
                      for path, (name, kind) in ASSETS.items()}

    def mount(self, router: Router) -> None:
        for path in self.files:
            router.add("GET", path, self.serve)
        router.add("GET", "/dashboard/", self.serve)

    async def serve(self, request: Request, send: Send) -> None:
        body, headers = self.files[request.path if request.path != "/dashboard/" else "/dashboard"]
        await send_bytes(send, 200, body, headers)
