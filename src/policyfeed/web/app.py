"""The WSGI application behind ``policyfeed serve`` (or any WSGI server): the built site's files
and the site's endpoints, with what every answer needs done in one place.

Adding an endpoint (the seam other modules build on)
----------------------------------------------------
Write a module ``policyfeed/web/<name>.py`` with a view and a function listing its endpoints::

    from policyfeed.web.app import Endpoint, WebContext

    def subscribe(request: Request, site: WebContext) -> Response:
        ...
        return site.page("web/subscribe.html", form=...)

    def endpoints(settings: Settings) -> list[Endpoint]:
        return [Endpoint("/subscribe", subscribe, methods=("GET", "POST"), max_body=8 * 1024)]

and add ``"<name>"`` to :data:`VIEW_MODULES`. ``Endpoint`` takes a werkzeug rule (converters
such as ``/preview/<int:number>`` pass their values to the view as keyword arguments), the
view, the methods it answers (``HEAD`` comes with ``GET``), ``max_body`` (bytes; a larger
request is answered 413 before any of it is read, and the server's own cap is the largest of
these), ``max_form_parts`` and ``token_page`` (a secret in the URL or the form). A view gets a
:class:`WebContext`: the settings, the database path, ``now()``, ``page()`` (a template with
the site's look, see ``templates/web/base.html``), ``token()`` (the ``t`` parameter, refused
over :data:`MAX_TOKEN_LENGTH`) and ``has_route()``. ``request.remote_addr`` is the client's
address: behind ``web.trusted_proxies`` proxies it comes from ``X-Forwarded-For``
(werkzeug's ProxyFix), otherwise from the socket.

What every answer gets without the view doing anything:

- 405 with ``Allow`` for a method the endpoint does not answer; 413 over its body or form
  caps; 400 for a NUL or control character in the path, or a ``t`` over 400 characters.
- The security headers (:func:`secure`): ``X-Content-Type-Options: nosniff`` on all; on HTML a
  Content-Security-Policy without script and with ``frame-ancestors 'none'``; on token pages
  also ``Cache-Control: no-store``, ``Referrer-Policy: no-referrer`` and ``X-Robots-Tag``.
- Errors as pages in the site's look; no request ends in a traceback (an unexpected exception
  is logged and answered 500 without details).

Static files (:mod:`policyfeed.web.static`) answer every other path, for GET and HEAD only.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from werkzeug.exceptions import (
    BadRequest,
    HTTPException,
    InternalServerError,
    MethodNotAllowed,
    RequestEntityTooLarge,
)
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from policyfeed.config import require_secret_length
from policyfeed.errors import ConfigError
from policyfeed.model import N_
from policyfeed.web.static import PathTooLong, StaticFiles

if TYPE_CHECKING:
    from policyfeed.config import Settings

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
View = Callable[..., Response]

#: The modules of ``policyfeed.web`` whose ``endpoints(settings)`` the app serves.
VIEW_MODULES: tuple[str, ...] = ("unsubscribe", "health", "ses", "signup", "preview")

#: Longer than any token the site makes (about 30 characters), short enough not to be echoed.
MAX_TOKEN_LENGTH = 400
#: The body cap of an endpoint that does not say (a form of a few fields).
DEFAULT_MAX_BODY = 16 * 1024
DEFAULT_MAX_FORM_PARTS = 20
ERROR_TEMPLATE = "web/error.html"
#: werkzeug's names and descriptions of the errors the app answers with, marked for the
#: catalogs: the error page shows them in the site's language.
ERROR_WORDS = (
    N_("Bad Request"),
    N_("The browser (or proxy) sent a request that this server could not understand."),
    N_("Not Found"),
    N_(
        "The requested URL was not found on the server. If you entered the URL manually please "
        "check your spelling and try again."
    ),
    N_("Method Not Allowed"),
    N_("The method is not allowed for the requested URL."),
    N_("Request Entity Too Large"),
    N_("The data value transmitted exceeds the capacity limit."),
    N_("Too Many Requests"),
    N_("This user has exceeded an allotted request count. Try again later."),
    N_("Internal Server Error"),
    N_(
        "The server encountered an internal error and was unable to complete your request. "
        "Either the server is overloaded or there is an error in the application."
    ),
)

#: No script at all; styles inline (the site's pages carry theirs); images from anywhere a post
#: links them; forms only to this site; never inside a frame.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'none'; object-src 'none'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' https: http: data:; media-src 'self' https:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
TOKEN_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    # The token is in the URL: never hand it to another site in a Referer.
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}


@dataclass(frozen=True)
class Endpoint:
    """One URL the app answers besides the static files (see the module docstring)."""

    rule: str
    view: View
    methods: tuple[str, ...] = ("GET", "HEAD")
    max_body: int = DEFAULT_MAX_BODY
    max_form_parts: int = DEFAULT_MAX_FORM_PARTS
    token_page: bool = False

    @property
    def allowed(self) -> tuple[str, ...]:
        methods = tuple(m.upper() for m in self.methods)
        return (*methods, "HEAD") if "GET" in methods and "HEAD" not in methods else methods


#: The static files: no body at all.
_STATIC = Endpoint("/<path:path>", view=lambda request, site: Response(), max_body=0)


def secure(response: Response, *, token_page: bool) -> Response:
    """The headers every answer carries; the one place they are set."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Frame-Options"] = "DENY"
    if token_page:
        response.headers.update(TOKEN_PAGE_HEADERS)
    return response


def _loggable(text: str, limit: int = 80) -> str:
    """A request path for a log line: escaped (no control characters) and cut short."""
    shown = repr(text[:limit])
    return shown + (f"… ({len(text)} characters)" if len(text) > limit else "")


def _refused(method: str, path: str, why: str) -> None:
    """The one log line of a refused request."""
    shown = method if method.isascii() and method.isalpha() else _loggable(method)
    log.warning("refused %s %s: %s", shown, _loggable(path), why)


def _is_utf8(wsgi_text: str) -> bool:
    """Whether a PEP 3333 string (bytes as latin-1) holds UTF-8."""
    try:
        wsgi_text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return False
    return True


def _has_control_character(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


class WebContext:
    """What a view gets besides its request."""

    def __init__(
        self,
        settings: Settings,
        db_path: Path,
        out_dir: Path,
        *,
        secret: str,
        now: Callable[[], datetime],
        url_map: Map,
    ) -> None:
        self.settings = settings
        self.db_path = Path(db_path)
        self.out_dir = Path(out_dir)
        #: The key of the site's tokens: POLICYFEED_SECRET (or the public development key in
        #: the demo mode).
        self.secret = secret
        self._now = now
        self._url_map = url_map

    def now(self) -> datetime:
        return self._now()

    def has_route(self, path: str) -> bool:
        """Whether an endpoint (not a static file) answers ``path``."""
        try:
            endpoint, _ = self._url_map.bind("localhost").match(path, method="GET")
        except HTTPException:
            return False
        return endpoint != "static"

    def token(self, request: Request, name: str = "t") -> str:
        """The token in the query string, or else in a POSTed form; 400 when longer than any
        token of ours."""
        token = request.args.get(name, "")
        if not token and request.method == "POST":
            token = request.form.get(name, "")
        if len(token) > MAX_TOKEN_LENGTH:
            raise BadRequest(f"the {name} parameter is longer than any link of this site")
        return token.strip()

    def page_context(self, language: str | None = None) -> dict[str, Any]:
        """What the site's layout needs (``templates/site/base.html``), in ``language`` (None:
        the site's)."""
        from policyfeed.site.build import feed_links
        from policyfeed.templating import text_direction

        settings = self.settings
        language = language or settings.language
        return {
            "site": {
                "title": settings.title,
                "description": " ".join(settings.description.split()),
                "url": settings.base_url,
                "language": language,
                "dir": text_direction(language),
            },
            # The site's root as a path on this host: right behind a proxy and under serve.
            "root": urlsplit(settings.base_url).path or "/",
            "feeds": feed_links(settings),
        }

    def render(self, template: str, *, language: str | None = None, **context: Any) -> str:
        from policyfeed.templating import render_template

        return render_template(
            self.settings,
            template,
            language=language,
            **{**self.page_context(language), **context},
        )

    def page(
        self, template: str, *, status: int = 200, language: str | None = None, **context: Any
    ) -> Response:
        """An HTML answer from ``template`` with the site's look, in ``language`` (a member's
        chapter's; None: the site's)."""
        html = self.render(template, language=language, **context)
        return Response(html, status=status, content_type="text/html; charset=utf-8")


class SiteApp:
    """The site: static files from ``out_dir`` and the endpoints of :data:`VIEW_MODULES`."""

    def __init__(
        self,
        settings: Settings,
        db_path: Path,
        out_dir: Path,
        *,
        demo: bool = False,
        endpoints: Sequence[Endpoint] = (),
        now: Callable[[], datetime] | None = None,
    ) -> None:
        from policyfeed.audience.subscribers import DEVELOPMENT_SECRET

        if not settings.secret and not demo:
            raise ConfigError(
                "POLICYFEED_SECRET is not set: the web app checks the unsubscribe links with "
                "it and refuses to start without it (set the same value as for publish; "
                "`policyfeed serve --demo` previews the site locally without one)"
            )
        if settings.secret:
            require_secret_length(settings.secret)
        self.settings = settings
        self.db_path = Path(db_path)
        self.out_dir = Path(out_dir)
        self.demo = demo
        # An endpoint given here takes the place of a module's with the same rule.
        given = {e.rule for e in endpoints}
        modules = [e for e in load_endpoints(settings) if e.rule not in given]
        self.endpoints: list[Endpoint] = [*modules, *endpoints]
        rules = [Rule(e.rule, endpoint=i) for i, e in enumerate(self.endpoints)]
        rules += [
            Rule("/", endpoint="static", defaults={"path": ""}),
            Rule("/<path:path>", endpoint="static"),
        ]
        # No slash merging or slash redirects: werkzeug would build those from the Host header.
        self.url_map = Map(rules, strict_slashes=False, merge_slashes=False)
        self.site = WebContext(
            settings,
            self.db_path,
            self.out_dir,
            secret=settings.secret or DEVELOPMENT_SECRET,
            now=now or _utcnow,
            url_map=self.url_map,
        )
        self.static = StaticFiles(self.out_dir)
        self._wsgi: WSGIApp = self._dispatch
        if settings.trusted_proxies:
            from werkzeug.middleware.proxy_fix import ProxyFix

            n = settings.trusted_proxies
            self._wsgi = ProxyFix(self._dispatch, x_for=n, x_proto=n)

    @property
    def max_body(self) -> int:
        """The largest body any endpoint takes: the cap for the server in front."""
        return max([e.max_body for e in self.endpoints], default=0)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return self._wsgi(environ, start_response)

    def _dispatch(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        endpoint: Endpoint | None = None
        try:
            path_info = environ.get("PATH_INFO", "")
            if _has_control_character(path_info):
                _refused(request.method, path_info, "a control character in the path")
                raise BadRequest(N_("The path holds a control character."))
            if not _is_utf8(environ.get("QUERY_STRING", "")):
                # werkzeug decodes a raw query string as UTF-8 and fails on anything else.
                _refused(request.method, path_info, "the query string is not UTF-8")
                raise BadRequest(N_("The query string is not UTF-8."))
            adapter = self.url_map.bind_to_environ(environ)
            name, values = adapter.match()
            endpoint = _STATIC if name == "static" else self.endpoints[int(name)]
            response = self._answer(request, endpoint, name, values)
        except PathTooLong as exc:
            _refused(request.method, request.path, "longer than any path of the site")
            response = self._error(exc)
        except HTTPException as exc:
            response = self._error(exc)
        except Exception:
            log.exception("error answering %s %s", request.method, _loggable(request.path))
            response = self._error(InternalServerError())
        token_page = endpoint is not None and endpoint.token_page
        return secure(response, token_page=token_page)(environ, start_response)

    def _answer(
        self, request: Request, endpoint: Endpoint, name: str, values: Mapping[str, Any]
    ) -> Response:
        if request.method not in endpoint.allowed:
            raise MethodNotAllowed(valid_methods=list(endpoint.allowed))
        length = request.content_length
        if length is None:
            _buffer_unsized_body(request.environ, endpoint.max_body)
        elif length > endpoint.max_body:
            raise RequestEntityTooLarge()
        request.max_content_length = endpoint.max_body
        request.max_form_memory_size = endpoint.max_body
        request.max_form_parts = endpoint.max_form_parts
        if endpoint.token_page and any(
            len(v) > MAX_TOKEN_LENGTH for v in request.args.getlist("t")
        ):
            raise BadRequest(N_("The link is longer than any link of this site."))
        if name == "static":
            return self.static.serve(request, values["path"])
        return endpoint.view(request, self.site, **values)

    def _error(self, exc: HTTPException) -> Response:
        """An error as a page in the site's look and language (plain text if the template
        fails)."""
        from policyfeed.templating import translations

        code = exc.code or 500
        settings = self.site.settings
        words = translations(settings.language, settings.templates_dir).gettext
        try:
            response = self.site.page(
                ERROR_TEMPLATE, status=code, code=code, title=words(exc.name),
                message=words(exc.description or ""),
            )  # fmt: skip
        except Exception:
            log.exception("the error page %s cannot be shown", ERROR_TEMPLATE)
            response = Response(f"{code} {exc.name}\n", status=code, mimetype="text/plain")
        for key, value in exc.get_headers():
            if key.lower() != "content-type":
                response.headers[key] = value
        return response


def _buffer_unsized_body(environ: dict[str, Any], limit: int) -> None:
    """A body without Content-Length (chunked, from a server that sets wsgi.input_terminated):
    read at most ``limit`` bytes of it and hand it on with its length, or 413. werkzeug alone
    would cut such a form short at the limit instead of refusing it."""
    if "wsgi.input_terminated" not in environ:
        return  # werkzeug reads no body of unknown length from other servers
    import io

    data = environ["wsgi.input"].read(limit + 1)
    if len(data) > limit:
        raise RequestEntityTooLarge()
    environ["wsgi.input"] = io.BytesIO(data)
    environ["CONTENT_LENGTH"] = str(len(data))
    environ.pop("HTTP_TRANSFER_ENCODING", None)


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def load_endpoints(settings: Settings) -> list[Endpoint]:
    """The endpoints of every module in :data:`VIEW_MODULES`, in that order."""
    found: list[Endpoint] = []
    for name in VIEW_MODULES:
        module = importlib.import_module(f"policyfeed.web.{name}")
        found.extend(module.endpoints(settings))
    return found


def make_app(
    settings: Settings,
    db_path: Path,
    out_dir: Path,
    *,
    demo: bool = False,
    endpoints: Sequence[Endpoint] = (),
    now: Callable[[], datetime] | None = None,
) -> SiteApp:
    """The WSGI application serving ``out_dir`` and the endpoints for ``settings``, and
    ``endpoints`` besides (one with a module's rule takes its place: ``serve`` on a loopback
    address gives the editors' preview this way, see :mod:`policyfeed.web.preview`).

    Without ``settings.secret`` it refuses to start (ConfigError) unless ``demo`` is true: a
    local preview that checks links with the public development key (the one ``publish`` signs
    outbox messages with when no secret is set)."""
    return SiteApp(settings, db_path, out_dir, demo=demo, endpoints=endpoints, now=now)


def create_app(environ: Mapping[str, str] | None = None) -> SiteApp:
    """The application for a WSGI server, configured from the environment as the CLI is:
    ``POLICYFEED_CONFIG`` (default ``./policyfeed.toml`` if present), ``POLICYFEED_DB``
    (default ``posts.db``), ``POLICYFEED_SECRET`` and the other ``POLICYFEED_*`` settings.

    ``waitress-serve --call policyfeed.web:create_app`` or
    ``gunicorn 'policyfeed.web:create_app()'``. Refuses to start (ConfigError) without the
    secret or the database."""
    from policyfeed.config import load_settings

    environ = os.environ if environ is None else environ
    config = environ.get("POLICYFEED_CONFIG")
    settings = load_settings(Path(config) if config else None, environ=environ)
    db_path = Path(environ.get("POLICYFEED_DB") or "posts.db")
    app = make_app(settings, db_path, settings.output_dir)
    if not db_path.is_file():
        raise ConfigError(f"{db_path}: no such database (set POLICYFEED_DB to the site's posts.db)")
    return app
