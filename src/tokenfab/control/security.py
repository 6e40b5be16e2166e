"""Security headers on every answer of the control plane, and ``Cache-Control: no-store`` on the API's.

The dashboard and the API docs load only this server's own scripts (``script-src 'self'``; no inline
script), may not be framed (``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``), send no referrer,
and no answer is sniffed as another content type. API answers are per caller and may hold secrets (a
new token's, shown once): no cache may keep them.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",  # the dashboard colours map cells with style attributes
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}
NO_STORE_PREFIXES = ("/api/", "/metrics")


class SecurityHeadersMiddleware:
    """Adds `SECURITY_HEADERS` to every HTTP answer, and ``Cache-Control: no-store`` to API answers."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = dict(SECURITY_HEADERS)
        if scope["path"].startswith(NO_STORE_PREFIXES):
            extra["cache-control"] = "no-store"
            extra["pragma"] = "no-cache"
        encoded = [(name.encode(), value.encode()) for name, value in extra.items()]

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers += [(name, value) for name, value in encoded if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, _send)
