"""Response headers every answer of the web process carries, whatever view made it.

- `X-Content-Type-Options: nosniff` everywhere: a browser never guesses a type we did not say
  (a JSON error body holding a sender's text is never run as HTML or script).
- `Cache-Control: no-store` on the ops API and the contractors' coverage API: personal data
  and operator views are kept by no cache on the way.
- `Strict-Transport-Security` on answers sent over TLS, when HSTS_SECONDS (shared by
  every page: the console, the coverage page, the APIs) is set; over plain HTTP it means
  nothing to a browser and is left out.
"""

from __future__ import annotations

from flask import Flask, Response, request

from ..config import Config

NO_STORE_PREFIXES = ("/api/ops/", "/api/contractors/")


def install(app: Flask, cfg: Config) -> None:
    """Add the headers above to every response of `app`."""
    hsts = f"max-age={cfg.HSTS_SECONDS}; includeSubDomains" if cfg.HSTS_SECONDS else None

    @app.after_request
    def _everywhere(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        if request.path.startswith(NO_STORE_PREFIXES):
            response.headers["Cache-Control"] = "no-store"
        if hsts and request.is_secure:
            response.headers["Strict-Transport-Security"] = hsts
        return response
