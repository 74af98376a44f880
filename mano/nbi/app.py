"""The FastAPI application of the NBI: routes are thin (validate with a pydantic model, call
one ``Catalogue``/``Lifecycle`` method, return SOL005 JSON); every error becomes a
ProblemDetails body in ``problem``, the one exception handler.

    create_app(nfvo, records, *, auth=None, page_size=100) -> FastAPI

``auth`` (``mano.nbi.auth.Auth``) checks bearer tokens and gives each request its tenant;
without it every request acts as tenant ``admin`` (unit tests of the API alone).
SOL013 conventions: ``Version`` header on every response (a request's ``Version`` must
name a supported major version, else 406), ``{api}/api_versions`` and
``{api}/v1/api_versions``, list filters, attribute selectors and paging (``sol013``).
"""
from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Body, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from mano.errors import ConflictError, DescriptorError, MANOError, NotFoundError
from mano.nbi import models as M
from mano.nbi.auth import AuthError
from mano.nbi.catalogue import Catalogue
from mano.nbi.lcm import Lifecycle, Unprocessable
from mano.nbi.metrics import NfvoMetrics
from mano.nbi.notify import Notifier
from mano.nbi.records import Records
from mano.nbi.sol013 import BadQuery, Selector, matches, page, parse_filter

log = logging.getLogger(__name__)

#: SOL005 API name -> the version of it served under ``/{name}/v1`` (SOL013 clause 9.1).
API_VERSIONS = {"nsd": "2.0.0", "vnfpkgm": "2.0.0", "nslcm": "2.0.0"}

#: Complex attributes left out unless asked for (SOL005 "exclude_default" per resource).
DEFAULT_EXCLUDED = {
    "ns_instances": ("vnfInstance", "pnfInfo", "virtualLinkInfo", "vnffgInfo", "sapInfo",
                     "nsScaleStatus", "additionalAffinityOrAntiAffinityRule"),
    "ns_lcm_op_occs": ("operationParams", "error", "resourceChanges", "changedInfo"),
    "ns_descriptors": ("userDefinedData",),
    "vnf_packages": ("softwareImages", "additionalArtifacts", "userDefinedData", "checksum"),
    "subscriptions": (),
}


class HTTPProblem(Exception):
    """An error with a given status (401, 403, 406...) from the NBI itself."""

    def __init__(self, status: int, detail: str, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


def problem(status: int, detail: str, headers: dict | None = None,
            **extra) -> JSONResponse:
    """A SOL013 ProblemDetails response (``extra``: extension members)."""
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
            "detail": detail, **extra}
    return JSONResponse(body, status_code=status, headers=headers,
                        media_type="application/problem+json")


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


LIST_PARAMS = ("filter", "all_fields", "fields", "exclude_fields", "exclude_default",
               "nextpage_opaque_marker")


class ListQuery:
    """The SOL013 query parameters of a list (filter, attribute selectors, paging); any
    other query parameter is refused (400) rather than silently ignored."""

    def __init__(self, request: Request, filter: str | None = None,
                 all_fields: str | None = None, fields: str | None = None,
                 exclude_fields: str | None = None, exclude_default: str | None = None,
                 nextpage_opaque_marker: str | None = None):
        unknown = sorted(set(request.query_params) - set(LIST_PARAMS))
        if unknown:
            raise BadQuery(f"unknown query parameter(s) {', '.join(map(repr, unknown))}; "
                           f"valid: {', '.join(LIST_PARAMS)}")
        self.terms = parse_filter(filter) if filter is not None else []
        self.selector = Selector.parse(all_fields, fields, exclude_fields, exclude_default)
        self.marker = nextpage_opaque_marker

    def respond(self, request: Request, items: list[dict], resource: str) -> JSONResponse:
        kept = [i for i in items if matches(i, self.terms)]
        shown, nxt = page(kept, self.marker, request.app.state.page_size)
        body = [self.selector.apply(i, DEFAULT_EXCLUDED[resource]) for i in shown]
        headers = {}
        if nxt is not None:
            url = request.url.include_query_params(nextpage_opaque_marker=nxt)
            headers["Link"] = f'<{url}>; rel="next"'
        return JSONResponse(body, headers=headers)


def _root(request: Request) -> str:
    return str(request.base_url).rstrip("/")


BEARER = HTTPBearer(auto_error=False, description="a token from POST /oauth2/token "
                                                  "(OAuth 2.0 client credentials)")


def tenant_of(request: Request,
              _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> str:
    """The requesting client's tenant (project), from its bearer token. (The ``BEARER``
    dependency declares the scheme in the OpenAPI document; ``Auth`` does the checking.)"""
    auth = request.app.state.auth
    if auth is None:
        return "admin"
    return auth.tenant(request.headers.get("Authorization"))


def need_admin(request: Request,
               _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> None:
    auth = request.app.state.auth
    if auth is None:
        raise HTTPProblem(404, "client management needs the NBI to run with authentication")
    auth.need_admin(request.headers.get("Authorization"))


Tenant = Annotated[str, Depends(tenant_of)]
Lq = Annotated[ListQuery, Depends(ListQuery)]
RAW = {"requestBody": {"required": True, "content": {
    "text/plain": {"schema": {"type": "string"}},
    "application/zip": {"schema": {"type": "string", "format": "binary"}}}}}


def _created(body: dict, location: str) -> JSONResponse:
    return JSONResponse(body, status_code=201, headers={"Location": location})


def _accepted(request: Request, op_id: str) -> Response:
    return Response(status_code=202, headers={
        "Location": f"{_root(request)}/nslcm/v1/ns_lcm_op_occs/{op_id}"})


PROBLEM = {"application/problem+json": {"schema": {
    "$ref": "#/components/schemas/ProblemDetails"}}}


def _errors(*codes: int) -> dict:
    """OpenAPI responses: ProblemDetails (application/problem+json) for each status."""
    return {c: {"model": M.ProblemDetails, "description": HTTPStatus(c).phrase,
                "content": PROBLEM} for c in codes}


def nsd_router() -> APIRouter:
    r = APIRouter(prefix="/nsd/v1", tags=["NSD management (SOL005 clause 5)"],
                  responses=_errors(400, 401, 403, 404, 406))

    @r.get("/ns_descriptors", response_model=list[M.NsdInfo])
    def list_nsds(request: Request, tenant: Tenant, q: Lq):
        cat: Catalogue = request.app.state.catalogue
        return q.respond(request, cat.list_nsd_infos(tenant, _root(request)), "ns_descriptors")

    @r.post("/ns_descriptors", status_code=201, response_model=M.NsdInfo)
    def create_nsd(request: Request, tenant: Tenant, body: M.CreateNsdInfoRequest):
        cat: Catalogue = request.app.state.catalogue
        iid = cat.create_nsd_info(tenant, body.userDefinedData)
        info = cat.nsd_info(iid, tenant, _root(request))
        return _created(info, info["_links"]["self"]["href"])

    @r.get("/ns_descriptors/{nsdInfoId}", response_model=M.NsdInfo)
    def read_nsd(request: Request, tenant: Tenant, nsdInfoId: str):
        return JSONResponse(request.app.state.catalogue.nsd_info(nsdInfoId, tenant,
                                                                 _root(request)))

    @r.patch("/ns_descriptors/{nsdInfoId}", response_model=M.NsdInfoModifications,
             responses=_errors(409, 422))
    def patch_nsd(request: Request, tenant: Tenant, nsdInfoId: str,
                  body: M.NsdInfoModifications):
        return JSONResponse(request.app.state.catalogue.patch_nsd_info(
            nsdInfoId, tenant, body.nsdOperationalState, body.userDefinedData))

    @r.delete("/ns_descriptors/{nsdInfoId}", status_code=204, responses=_errors(409))
    def delete_nsd(request: Request, tenant: Tenant, nsdInfoId: str):
        request.app.state.catalogue.delete_nsd_info(nsdInfoId, tenant)
        return Response(status_code=204)

    @r.put("/ns_descriptors/{nsdInfoId}/nsd_content", status_code=204, openapi_extra=RAW,
           responses=_errors(409, 422))
    async def upload_nsd(request: Request, tenant: Tenant, nsdInfoId: str):
        request.app.state.catalogue.upload_nsd(nsdInfoId, tenant, await request.body())
        return Response(status_code=204)

    @r.get("/ns_descriptors/{nsdInfoId}/nsd_content", response_class=PlainTextResponse,
           responses=_errors(409))
    def read_nsd_content(request: Request, tenant: Tenant, nsdInfoId: str):
        return PlainTextResponse(request.app.state.catalogue.nsd_content(nsdInfoId, tenant))

    return r


def vnfpkgm_router() -> APIRouter:
    r = APIRouter(prefix="/vnfpkgm/v1", tags=["VNF package management (SOL005 clause 9)"],
                  responses=_errors(400, 401, 403, 404, 406))

    @r.get("/vnf_packages", response_model=list[M.VnfPkgInfo])
    def list_pkgs(request: Request, tenant: Tenant, q: Lq):
        cat: Catalogue = request.app.state.catalogue
        return q.respond(request, cat.list_vnf_pkgs(tenant, _root(request)), "vnf_packages")

    @r.post("/vnf_packages", status_code=201, response_model=M.VnfPkgInfo)
    def create_pkg(request: Request, tenant: Tenant, body: M.CreateVnfPkgInfoRequest):
        cat: Catalogue = request.app.state.catalogue
        pid = cat.create_vnf_pkg(tenant, body.userDefinedData)
        info = cat.vnf_pkg(pid, tenant, _root(request))
        return _created(info, info["_links"]["self"]["href"])

    @r.get("/vnf_packages/{vnfPkgId}", response_model=M.VnfPkgInfo)
    def read_pkg(request: Request, tenant: Tenant, vnfPkgId: str):
        return JSONResponse(request.app.state.catalogue.vnf_pkg(vnfPkgId, tenant,
                                                                _root(request)))

    @r.delete("/vnf_packages/{vnfPkgId}", status_code=204, responses=_errors(409))
    def delete_pkg(request: Request, tenant: Tenant, vnfPkgId: str):
        request.app.state.catalogue.delete_vnf_pkg(vnfPkgId, tenant)
        return Response(status_code=204)

    @r.put("/vnf_packages/{vnfPkgId}/package_content", status_code=204, openapi_extra=RAW,
           responses=_errors(409, 422))
    async def upload_pkg(request: Request, tenant: Tenant, vnfPkgId: str):
        request.app.state.catalogue.upload_vnf_pkg(vnfPkgId, tenant, await request.body())
        return Response(status_code=204)

    @r.get("/vnf_packages/{vnfPkgId}/vnfd", response_class=PlainTextResponse,
           responses=_errors(409))
    def read_vnfd(request: Request, tenant: Tenant, vnfPkgId: str):
        return PlainTextResponse(request.app.state.catalogue.vnfd_text(vnfPkgId, tenant))

    return r


def nslcm_router() -> APIRouter:
    r = APIRouter(prefix="/nslcm/v1", tags=["NS lifecycle management (SOL005 clause 6)"],
                  responses=_errors(400, 401, 403, 404, 406))
    task = {"status_code": 202, "responses": {202: {"description": "Accepted; Location names "
                                                    "the NS LCM operation occurrence"},
                                              **_errors(409, 422)}}

    def lcm(request: Request) -> Lifecycle:
        return request.app.state.lcm

    @r.get("/ns_instances", response_model=list[M.NsInstance])
    def list_ns(request: Request, tenant: Tenant, q: Lq):
        return q.respond(request, lcm(request).list(tenant, _root(request)), "ns_instances")

    @r.post("/ns_instances", status_code=201, response_model=M.NsInstance,
            responses=_errors(409, 422))
    def create_ns(request: Request, tenant: Tenant, body: M.CreateNsRequest):
        ns_id = lcm(request).create(tenant, body.nsdId, body.nsName, body.nsDescription)
        ns = lcm(request).ns_instance(ns_id, tenant, _root(request))
        return _created(ns, ns["_links"]["self"]["href"])

    @r.get("/ns_instances/{nsInstanceId}", response_model=M.NsInstance)
    def read_ns(request: Request, tenant: Tenant, nsInstanceId: str):
        return JSONResponse(lcm(request).ns_instance(nsInstanceId, tenant, _root(request)))

    @r.delete("/ns_instances/{nsInstanceId}", status_code=204, responses=_errors(409))
    def delete_ns(request: Request, tenant: Tenant, nsInstanceId: str):
        lcm(request).delete(nsInstanceId, tenant)
        return Response(status_code=204)

    @r.post("/ns_instances/{nsInstanceId}/instantiate", **task)
    def instantiate(request: Request, tenant: Tenant, nsInstanceId: str,
                    body: M.InstantiateNsRequest):
        return _accepted(request, lcm(request).instantiate(
            nsInstanceId, tenant, body.model_dump(exclude_none=True)))

    @r.post("/ns_instances/{nsInstanceId}/scale", **task)
    def scale(request: Request, tenant: Tenant, nsInstanceId: str, body: M.ScaleNsRequest):
        return _accepted(request, lcm(request).scale(
            nsInstanceId, tenant, body.model_dump(exclude_none=True)))

    @r.post("/ns_instances/{nsInstanceId}/heal", **task)
    def heal(request: Request, tenant: Tenant, nsInstanceId: str, body: M.HealNsRequest):
        return _accepted(request, lcm(request).heal(
            nsInstanceId, tenant, body.model_dump(exclude_none=True)))

    @r.post("/ns_instances/{nsInstanceId}/terminate", **task)
    def terminate(request: Request, tenant: Tenant, nsInstanceId: str,
                  body: Annotated[M.TerminateNsRequest | None, Body()] = None):
        req = body.model_dump(exclude_none=True) if body is not None else {}
        return _accepted(request, lcm(request).terminate(nsInstanceId, tenant, req))

    @r.get("/subscriptions", response_model=list[M.LccnSubscription])
    def list_subs(request: Request, tenant: Tenant, q: Lq):
        return q.respond(request, request.app.state.notifier.list(tenant, _root(request)),
                         "subscriptions")

    @r.post("/subscriptions", status_code=201, response_model=M.LccnSubscription,
            responses=_errors(422))
    def subscribe(request: Request, tenant: Tenant, body: M.LccnSubscriptionRequest):
        sub = request.app.state.notifier.subscribe(
            tenant, body.model_dump(exclude_none=True), _root(request))
        return _created(sub, sub["_links"]["self"]["href"])

    @r.get("/subscriptions/{subscriptionId}", response_model=M.LccnSubscription)
    def read_sub(request: Request, tenant: Tenant, subscriptionId: str):
        return JSONResponse(request.app.state.notifier.view(subscriptionId, tenant,
                                                            _root(request)))

    @r.delete("/subscriptions/{subscriptionId}", status_code=204)
    def delete_sub(request: Request, tenant: Tenant, subscriptionId: str):
        request.app.state.notifier.unsubscribe(subscriptionId, tenant)
        return Response(status_code=204)

    @r.get("/ns_lcm_op_occs", response_model=list[M.NsLcmOpOcc])
    def list_ops(request: Request, tenant: Tenant, q: Lq):
        return q.respond(request, lcm(request).op_occs(tenant, _root(request)),
                         "ns_lcm_op_occs")

    @r.get("/ns_lcm_op_occs/{nsLcmOpOccId}", response_model=M.NsLcmOpOcc)
    def read_op(request: Request, tenant: Tenant, nsLcmOpOccId: str):
        return JSONResponse(lcm(request).op_occ(nsLcmOpOccId, tenant, _root(request)))

    @r.post("/ns_lcm_op_occs/{nsLcmOpOccId}/retry", **task)
    def retry(request: Request, tenant: Tenant, nsLcmOpOccId: str):
        return _accepted(request, lcm(request).retry(nsLcmOpOccId, tenant))

    @r.post("/ns_lcm_op_occs/{nsLcmOpOccId}/rollback", **task)
    def rollback(request: Request, tenant: Tenant, nsLcmOpOccId: str):
        lcm(request).rollback(nsLcmOpOccId, tenant)
        return _accepted(request, nsLcmOpOccId)

    @r.post("/ns_lcm_op_occs/{nsLcmOpOccId}/fail", response_model=M.NsLcmOpOcc,
            responses=_errors(409))
    def fail(request: Request, tenant: Tenant, nsLcmOpOccId: str):
        return JSONResponse(lcm(request).fail(nsLcmOpOccId, tenant, _root(request)))

    @r.post("/ns_lcm_op_occs/{nsLcmOpOccId}/cancel", **task)
    def cancel(request: Request, tenant: Tenant, nsLcmOpOccId: str):
        lcm(request).cancel(nsLcmOpOccId, tenant)
        return _accepted(request, nsLcmOpOccId)

    return r


FORM = {"requestBody": {"required": True, "content": {
    "application/x-www-form-urlencoded": {"schema": {
        "type": "object", "required": ["grant_type"],
        "properties": {"grant_type": {"type": "string", "enum": ["client_credentials"]},
                       "client_id": {"type": "string"},
                       "client_secret": {"type": "string"}}}}}}}


def auth_router() -> APIRouter:
    r = APIRouter(tags=["OAuth 2.0 and clients (SOL013 clause 8)"])

    @r.post("/oauth2/token", response_model=M.TokenResponse, openapi_extra=FORM,
            responses=_errors(400, 401))
    async def token(request: Request):
        auth = request.app.state.auth
        if auth is None:
            raise HTTPProblem(404, "this NBI runs without authentication")
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode(
            "utf-8", "replace")).items()}
        return JSONResponse(auth.issue(form, request.headers.get("Authorization")),
                            headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    admin = [Depends(need_admin)]

    @r.get("/admin/v1/clients", dependencies=admin, response_model=list[M.ClientInfo],
           responses=_errors(401, 403))
    def list_clients(request: Request):
        return JSONResponse(request.app.state.auth.clients())

    @r.post("/admin/v1/clients", dependencies=admin, status_code=201,
            response_model=M.ClientCreated, responses=_errors(400, 401, 403, 409))
    def add_client(request: Request, body: M.CreateClientRequest):
        secret = request.app.state.auth.add_client(body.clientId, body.project)
        return JSONResponse({"clientId": body.clientId, "project": body.project,
                             "clientSecret": secret}, status_code=201, headers={
            "Location": f"{_root(request)}/admin/v1/clients/{body.clientId}"})

    @r.delete("/admin/v1/clients/{clientId}", dependencies=admin, status_code=204,
              responses=_errors(401, 403, 404))
    def remove_client(request: Request, clientId: str):
        request.app.state.auth.remove_client(clientId)
        return Response(status_code=204)

    return r


def versions_router() -> APIRouter:
    r = APIRouter(tags=["API versions (SOL013 clause 9)"])
    def answer(info: dict):
        def versions():
            return JSONResponse(info)
        return versions

    for name, version in API_VERSIONS.items():
        info = {"uriPrefix": f"/{name}/v1",
                "apiVersions": [{"version": version, "isDeprecated": False}]}
        for path in (f"/{name}/api_versions", f"/{name}/v1/api_versions"):
            r.add_api_route(path, answer(info), methods=["GET"],
                            response_model=M.ApiVersionInformation, name=f"{name} versions "
                            f"at {path}")
    return r


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
