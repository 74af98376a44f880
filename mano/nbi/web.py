"""What the NBI's routes share: SOL005 API versions, ProblemDetails, the SOL013 list query
(filters, attribute selectors, paging), the bearer-token dependencies that give each
request its tenant, and the OpenAPI fragments of responses and raw bodies."""
from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mano.nbi import models as M
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
        for k in LIST_PARAMS:
            n = len(request.query_params.getlist(k))
            if n > 1:
                raise BadQuery(f"query parameter {k!r} given {n} times; give it once (join "
                               f"filter terms with ';', attribute names with ',')")
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


def root_url(request: Request) -> str:
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


def created(body: dict, location: str) -> JSONResponse:
    return JSONResponse(body, status_code=201, headers={"Location": location})


def accepted(request: Request, op_id: str) -> Response:
    return Response(status_code=202, headers={
        "Location": f"{root_url(request)}/nslcm/v1/ns_lcm_op_occs/{op_id}"})


PROBLEM = {"application/problem+json": {"schema": {
    "$ref": "#/components/schemas/ProblemDetails"}}}


def error_docs(*codes: int) -> dict:
    """OpenAPI responses: ProblemDetails (application/problem+json) for each status."""
    return {c: {"model": M.ProblemDetails, "description": HTTPStatus(c).phrase,
                "content": PROBLEM} for c in codes}


