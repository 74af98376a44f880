"""The FastAPI application of the NBI: the routers of ``routes`` over the NFVO, the
``Version``/``Accept`` middleware, ``/metrics``, and the one exception handler that turns
every error into a ProblemDetails body (``web.problem``).

    create_app(nfvo, records, *, auth=None, notifier=None, public_url=..., page_size=100)

``auth`` (``mano.nbi.auth.Auth``) checks bearer tokens and gives each request its tenant;
without it every request acts as tenant ``admin`` (unit tests of the API alone).
SOL013 conventions: ``Version`` header on every response (a request's ``Version`` must
name a supported major version, else 406), ``{api}/api_versions`` and
``{api}/v1/api_versions``, list filters, attribute selectors and paging (``sol013``).
"""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from mano.errors import ConflictError, DescriptorError, MANOError, NotFoundError
from mano.nbi.auth import AuthError
from mano.nbi.catalogue import Catalogue
from mano.nbi.lcm import Lifecycle, Unprocessable
from mano.nbi.metrics import NfvoMetrics
from mano.nbi.notify import Notifier
from mano.nbi.records import Records
from mano.nbi.routes import auth_router, nsd_router, nslcm_router, versions_router, vnfpkgm_router
from mano.nbi.sol013 import BadQuery
from mano.nbi.web import API_VERSIONS, HTTPProblem, problem

log = logging.getLogger(__name__)


def _status_of(exc: Exception) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, (DescriptorError, Unprocessable)):
        return 422
    if isinstance(exc, BadQuery):
        return 400
    return 422   # any other MANOError: a request the NFVO refused as it stands


RAW_PATHS = ("/nsd_content", "/package_content", "/vnfd")   # served as text, not JSON


def _accepts_json(accept: str) -> bool:
    """Whether an Accept header admits JSON (RFC 9110 media ranges, parameters ignored)."""
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in ("*/*", "application/*", "application/json") or media.endswith("+json"):
            return True
    return False


def _api_of(path: str) -> str | None:
    part = path.strip("/").split("/", 1)[0]
    return part if part in API_VERSIONS else None




def create_app(nfvo, records: Records, *, auth=None, notifier: Notifier | None = None,
               public_url: str = "http://127.0.0.1", page_size: int = 100) -> FastAPI:
    """The NBI over ``nfvo`` (an ``mano.nfvo.NFVO``) with its records in ``records``.
    ``public_url`` is the NBI's own URL, the base of the links in notifications (which
    have no request to take it from); ``notifier`` delivers them (made here if None)."""
    app = FastAPI(title="NFV testbed NFVO northbound interface (ETSI SOL005)",
                  version="0.1.0", description=__doc__)
    app.state.nfvo = nfvo
    app.state.catalogue = Catalogue(nfvo, records)
    app.state.lcm = Lifecycle(nfvo, records, app.state.catalogue)
    app.state.auth = auth
    app.state.page_size = page_size
    notifier = notifier if notifier is not None else Notifier(records)
    app.state.notifier = notifier
    root = public_url.rstrip("/")
    lcm = app.state.lcm
    nfvo.ops.listeners.append(lambda op: notifier.on_op(op, lcm.owner(op.subject_id), root))
    metrics = NfvoMetrics(nfvo)
    app.state.metrics = metrics
    nfvo.ops.listeners.append(metrics.on_op)

    @app.get("/metrics", tags=["Prometheus"], response_class=PlainTextResponse)
    def prometheus_metrics():
        """The NFVO's metrics in the Prometheus text format (see ``mano.nbi.metrics``)."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    lcm.ns_listeners.append(lambda *a: notifier.on_ns(*a, root))
    for router in (versions_router(), auth_router(), nsd_router(), vnfpkgm_router(),
                   nslcm_router()):
        app.include_router(router)

    @app.middleware("http")
    async def version_header(request: Request, call_next):
        api = _api_of(request.url.path)
        if api is not None:
            asked = request.headers.get("Version")
            served = API_VERSIONS[api]
            accept = request.headers.get("Accept")
            if asked is not None and asked.split(".")[0] != served.split(".")[0]:
                resp = problem(406, f"Version {asked!r} of the {api} API is not served; "
                                    f"this NFVO serves {served}")
            elif accept and not request.url.path.endswith(RAW_PATHS) and \
                    not _accepts_json(accept):
                resp = problem(406, f"Accept {accept!r}: this resource is only served as "
                                    f"application/json")
            else:
                resp = await call_next(request)
            resp.headers["Version"] = served
            return resp
        return await call_next(request)

    @app.exception_handler(Exception)
    async def any_error(request: Request, exc: Exception):
        if isinstance(exc, HTTPProblem):
            return problem(exc.status, exc.detail, exc.headers)
        if isinstance(exc, AuthError):
            headers = {"WWW-Authenticate": f'Bearer error="{exc.oauth_error}"'} \
                if exc.status == 401 else None
            return problem(exc.status, str(exc), headers, error=exc.oauth_error)
        if isinstance(exc, (MANOError, BadQuery)):
            return problem(_status_of(exc), str(exc))
        if isinstance(exc, RequestValidationError):
            parts = []
            for e in exc.errors():
                where = ".".join(str(x) for x in e.get("loc", ()))
                parts.append(f"{where}: {e.get('msg')}")
            return problem(400, "invalid request: " + "; ".join(parts))
        if isinstance(exc, StarletteHTTPException):
            detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
            if exc.status_code == 404 and detail == "Not Found":
                detail = f"no resource at {request.url.path}"
            elif exc.status_code == 405:
                detail = f"{request.method} is not allowed on {request.url.path}"
            return problem(exc.status_code, detail, getattr(exc, "headers", None))
        log.exception("%s %s failed", request.method, request.url.path)
        return problem(500, f"internal error: {exc!r}")

    for cls in (HTTPProblem, MANOError, BadQuery, RequestValidationError,
                StarletteHTTPException):
        app.add_exception_handler(cls, any_error)
    return app

