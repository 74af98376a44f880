"""The NBI's routes, one router per SOL005 API (NSD management, VNF package management,
NS lifecycle management), plus the OAuth 2.0 token endpoint, client management and
``api_versions``. Routes are thin: validate with a pydantic model, call one
``Catalogue``/``Lifecycle``/``Notifier``/``Auth`` method, answer with SOL005 JSON."""
from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from mano.nbi import models as M
from mano.nbi.catalogue import Catalogue
from mano.nbi.lcm import Lifecycle
from mano.nbi.web import (
    API_VERSIONS,
    RAW,
    HTTPProblem,
    Lq,
    Tenant,
    accepted,
    created,
    error_docs,
    need_admin,
    root_url,
)


def nsd_router() -> APIRouter:
    r = APIRouter(prefix="/nsd/v1", tags=["NSD management (SOL005 clause 5)"],
                  responses=error_docs(400, 401, 403, 404, 406))

    @r.get("/ns_descriptors", response_model=list[M.NsdInfo])
    def list_nsds(request: Request, tenant: Tenant, q: Lq):
        cat: Catalogue = request.app.state.catalogue
        return q.respond(request, cat.list_nsd_infos(tenant, root_url(request)), "ns_descriptors")

    @r.post("/ns_descriptors", status_code=201, response_model=M.NsdInfo)
    def create_nsd(request: Request, tenant: Tenant, body: M.CreateNsdInfoRequest):
        cat: Catalogue = request.app.state.catalogue
        iid = cat.create_nsd_info(tenant, body.userDefinedData)
        info = cat.nsd_info(iid, tenant, root_url(request))
        return created(info, info["_links"]["self"]["href"])

    @r.get("/ns_descriptors/{nsdInfoId}", response_model=M.NsdInfo)
    def read_nsd(request: Request, tenant: Tenant, nsdInfoId: str):
        return JSONResponse(request.app.state.catalogue.nsd_info(nsdInfoId, tenant,
                                                                 root_url(request)))

    @r.patch("/ns_descriptors/{nsdInfoId}", response_model=M.NsdInfoModifications,
             responses=error_docs(409, 422))
    def patch_nsd(request: Request, tenant: Tenant, nsdInfoId: str,
                  body: M.NsdInfoModifications):
        return JSONResponse(request.app.state.catalogue.patch_nsd_info(
            nsdInfoId, tenant, body.nsdOperationalState, body.userDefinedData))

    @r.delete("/ns_descriptors/{nsdInfoId}", status_code=204, responses=error_docs(409))
    def delete_nsd(request: Request, tenant: Tenant, nsdInfoId: str):
        request.app.state.catalogue.delete_nsd_info(nsdInfoId, tenant)
        return Response(status_code=204)

    @r.put("/ns_descriptors/{nsdInfoId}/nsd_content", status_code=204, openapi_extra=RAW,
           responses=error_docs(409, 422))
    async def upload_nsd(request: Request, tenant: Tenant, nsdInfoId: str):
        request.app.state.catalogue.upload_nsd(nsdInfoId, tenant, await request.body())
        return Response(status_code=204)

    @r.get("/ns_descriptors/{nsdInfoId}/nsd_content", response_class=PlainTextResponse,
           responses=error_docs(409))
    def read_nsd_content(request: Request, tenant: Tenant, nsdInfoId: str):
        return PlainTextResponse(request.app.state.catalogue.nsd_content(nsdInfoId, tenant))

    return r


def vnfpkgm_router() -> APIRouter:
    r = APIRouter(prefix="/vnfpkgm/v1", tags=["VNF package management (SOL005 clause 9)"],
                  responses=error_docs(400, 401, 403, 404, 406))

    @r.get("/vnf_packages", response_model=list[M.VnfPkgInfo])
    def list_pkgs(request: Request, tenant: Tenant, q: Lq):
        cat: Catalogue = request.app.state.catalogue
        return q.respond(request, cat.list_vnf_pkgs(tenant, root_url(request)), "vnf_packages")

    @r.post("/vnf_packages", status_code=201, response_model=M.VnfPkgInfo)
    def create_pkg(request: Request, tenant: Tenant, body: M.CreateVnfPkgInfoRequest):
        cat: Catalogue = request.app.state.catalogue
        pid = cat.create_vnf_pkg(tenant, body.userDefinedData)
        info = cat.vnf_pkg(pid, tenant, root_url(request))
        return created(info, info["_links"]["self"]["href"])

    @r.get("/vnf_packages/{vnfPkgId}", response_model=M.VnfPkgInfo)
    def read_pkg(request: Request, tenant: Tenant, vnfPkgId: str):
        return JSONResponse(request.app.state.catalogue.vnf_pkg(vnfPkgId, tenant,
                                                                root_url(request)))

    @r.delete("/vnf_packages/{vnfPkgId}", status_code=204, responses=error_docs(409))
    def delete_pkg(request: Request, tenant: Tenant, vnfPkgId: str):
        request.app.state.catalogue.delete_vnf_pkg(vnfPkgId, tenant)
        return Response(status_code=204)

    @r.put("/vnf_packages/{vnfPkgId}/package_content", status_code=204, openapi_extra=RAW,
           responses=error_docs(409, 422))
    async def upload_pkg(request: Request, tenant: Tenant, vnfPkgId: str):
        request.app.state.catalogue.upload_vnf_pkg(vnfPkgId, tenant, await request.body())
        return Response(status_code=204)

    @r.get("/vnf_packages/{vnfPkgId}/vnfd", response_class=PlainTextResponse,
           responses=error_docs(409))
    def read_vnfd(request: Request, tenant: Tenant, vnfPkgId: str):
        return PlainTextResponse(request.app.state.catalogue.vnfd_text(vnfPkgId, tenant))

    return r


def nslcm_router() -> APIRouter:
    r = APIRouter(prefix="/nslcm/v1", tags=["NS lifecycle management (SOL005 clause 6)"],
                  responses=error_docs(400, 401, 403, 404, 406))
    task = {"status_code": 202, "responses": {202: {"description": "Accepted; Location names "
                                                    "the NS LCM operation occurrence"},
                                              **error_docs(409, 422)}}

    def lcm(request: Request) -> Lifecycle:
        return request.app.state.lcm

    @r.get("/ns_instances", response_model=list[M.NsInstance])
    def list_ns(request: Request, tenant: Tenant, q: Lq):
        return q.respond(request, lcm(request).list(tenant, root_url(request)), "ns_instances")

    @r.post("/ns_instances", status_code=201, response_model=M.NsInstance,
            responses=error_docs(409, 422))
    def create_ns(request: Request, tenant: Tenant, body: M.CreateNsRequest):
        ns_id = lcm(request).create(tenant, body.nsdId, body.nsName, body.nsDescription)
        ns = lcm(request).ns_instance(ns_id, tenant, root_url(request))
        return created(ns, ns["_links"]["self"]["href"])

    @r.get("/ns_instances/{nsInstanceId}", response_model=M.NsInstance)
    def read_ns(request: Request, tenant: Tenant, nsInstanceId: str):
        return JSONResponse(lcm(request).ns_instance(nsInstanceId, tenant, root_url(request)))

    @r.delete("/ns_instances/{nsInstanceId}", status_code=204, responses=error_docs(409))
    def delete_ns(request: Request, tenant: Tenant, nsInstanceId: str):
        lcm(request).delete(nsInstanceId, tenant)
        return Response(status_code=204)

    @r.post("/ns_instances/{nsInstanceId}/instantiate", **task)
    def instantiate(request: Request, tenant: Tenant, nsInstanceId: str,
                    body: M.InstantiateNsRequest):
        return accepted(request, lcm(request).instantiate(
            nsInstanceId, tenant, body.model_dump(exclude_none=True)))

    @r.post("/ns_instances/{nsInstanceId}/scale", **task)
    def scale(request: Request, tenant: Tenant, nsInstanceId: str, body: M.ScaleNsRequest):
        return accepted(request, lcm(request).scale(
            nsInstanceId, tenant, body.model_dump(exclude_none=True)))

    @r.post("/ns_instances/{nsInstanceId}/heal", **task)
    def heal(request: Request, tenant: Tenant, nsInstanceId: str, body: M.HealNsRequest):
        return accepted(request, lcm(request).heal(
            nsInstanceId, tenant, body.model_dump(exclude_none=True)))

    @r.post("/ns_instances/{nsInstanceId}/terminate", **task)
    def terminate(request: Request, tenant: Tenant, nsInstanceId: str,
                  body: Annotated[M.TerminateNsRequest | None, Body()] = None):
        req = body.model_dump(exclude_none=True) if body is not None else {}
        return accepted(request, lcm(request).terminate(nsInstanceId, tenant, req))

    @r.get("/subscriptions", response_model=list[M.LccnSubscription])
    def list_subs(request: Request, tenant: Tenant, q: Lq):
        return q.respond(request, request.app.state.notifier.list(tenant, root_url(request)),
                         "subscriptions")

    @r.post("/subscriptions", status_code=201, response_model=M.LccnSubscription,
            responses=error_docs(422))
    def subscribe(request: Request, tenant: Tenant, body: M.LccnSubscriptionRequest):
        sub = request.app.state.notifier.subscribe(
            tenant, body.model_dump(exclude_none=True), root_url(request))
        return created(sub, sub["_links"]["self"]["href"])

    @r.get("/subscriptions/{subscriptionId}", response_model=M.LccnSubscription)
    def read_sub(request: Request, tenant: Tenant, subscriptionId: str):
        return JSONResponse(request.app.state.notifier.view(subscriptionId, tenant,
                                                            root_url(request)))

    @r.delete("/subscriptions/{subscriptionId}", status_code=204)
    def delete_sub(request: Request, tenant: Tenant, subscriptionId: str):
        request.app.state.notifier.unsubscribe(subscriptionId, tenant)
        return Response(status_code=204)

    @r.get("/ns_lcm_op_occs", response_model=list[M.NsLcmOpOcc])
    def list_ops(request: Request, tenant: Tenant, q: Lq):
        return q.respond(request, lcm(request).op_occs(tenant, root_url(request)),
                         "ns_lcm_op_occs")

    @r.get("/ns_lcm_op_occs/{nsLcmOpOccId}", response_model=M.NsLcmOpOcc)
    def read_op(request: Request, tenant: Tenant, nsLcmOpOccId: str):
        return JSONResponse(lcm(request).op_occ(nsLcmOpOccId, tenant, root_url(request)))

    @r.post("/ns_lcm_op_occs/{nsLcmOpOccId}/retry", **task)
    def retry(request: Request, tenant: Tenant, nsLcmOpOccId: str):
        return accepted(request, lcm(request).retry(nsLcmOpOccId, tenant))

    @r.post("/ns_lcm_op_occs/{nsLcmOpOccId}/rollback", **task)
    def rollback(request: Request, tenant: Tenant, nsLcmOpOccId: str):
        lcm(request).rollback(nsLcmOpOccId, tenant)
        return accepted(request, nsLcmOpOccId)

    @r.post("/ns_lcm_op_occs/{nsLcmOpOccId}/fail", response_model=M.NsLcmOpOcc,
            responses=error_docs(409))
    def fail(request: Request, tenant: Tenant, nsLcmOpOccId: str):
        return JSONResponse(lcm(request).fail(nsLcmOpOccId, tenant, root_url(request)))

    @r.post("/ns_lcm_op_occs/{nsLcmOpOccId}/cancel", **task)
    def cancel(request: Request, tenant: Tenant, nsLcmOpOccId: str):
        lcm(request).cancel(nsLcmOpOccId, tenant)
        return accepted(request, nsLcmOpOccId)

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
            responses=error_docs(400, 401))
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
           responses=error_docs(401, 403))
    def list_clients(request: Request):
        return JSONResponse(request.app.state.auth.clients())

    @r.post("/admin/v1/clients", dependencies=admin, status_code=201,
            response_model=M.ClientCreated, responses=error_docs(400, 401, 403, 409))
    def add_client(request: Request, body: M.CreateClientRequest):
        secret = request.app.state.auth.add_client(body.clientId, body.project)
        return JSONResponse({"clientId": body.clientId, "project": body.project,
                             "clientSecret": secret}, status_code=201, headers={
            "Location": f"{root_url(request)}/admin/v1/clients/{body.clientId}"})

    @r.delete("/admin/v1/clients/{clientId}", dependencies=admin, status_code=204,
              responses=error_docs(401, 403, 404))
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


