"""A small SOL005 client over httpx, for the ``testbed`` CLI and scripts.

    nbi = NbiClient(url, token=None)
    nbi.onboard_vnfd(path) / nbi.onboard_nsd(path)            -> the info object
    nbi.ns_by_name_or_id(x)                                   -> NsInstance
    nbi.task(ns_id, "instantiate", body) -> occurrence id; nbi.wait(op_id) -> NsLcmOpOcc

An NBI served over HTTPS with a certificate of a private CA is trusted with
``verify=tls_verify(CA_FILE)``.

Every error answer becomes ``NbiError`` carrying the ProblemDetails' status and detail;
an NBI that does not answer is an ``NbiError`` too (status 0).
"""
from __future__ import annotations

import ssl
import time
from pathlib import Path

import httpx

VERSION = "2.0.0"


class NbiError(Exception):
    """The NBI refused a request (``status``, ``detail`` from its ProblemDetails)."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def tls_verify(cacert: str | Path | None) -> ssl.SSLContext | bool:
    """What httpx's ``verify`` takes: a context trusting only the CA certificates of the PEM
    file ``cacert``, or True (the system's CAs) without one. Raises ``NbiError`` (status 0)
    when the file cannot be read as PEM certificates."""
    if not cacert:
        return True
    try:
        return ssl.create_default_context(cafile=str(cacert))
    except (OSError, ssl.SSLError) as exc:
        raise NbiError(0, f"cannot use {cacert} as CA certificates (PEM): {exc}") from None


class NbiClient:
    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0,
                 http: httpx.Client | None = None, verify: ssl.SSLContext | bool = True):
        """``http``: an ``httpx.Client`` to send with (e.g. one calling the app in-process);
        the default connects to ``url``, checking its TLS certificate with ``verify``
        (see ``tls_verify``)."""
        headers = {"Version": VERSION, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = http if http is not None else httpx.Client(base_url=url.rstrip("/"),
                                                                 timeout=timeout, verify=verify)
        self.http.headers.update(headers)

    def close(self) -> None:
        self.http.close()

    @staticmethod
    def token(url: str, client_id: str, secret: str, *,
              http: httpx.Client | None = None, verify: ssl.SSLContext | bool = True) -> dict:
        """A bearer token from ``POST /oauth2/token`` (client credentials, HTTP Basic): the
        RFC 6749 answer ``{"access_token", "token_type", "expires_in"}``."""
        client = http if http is not None else httpx.Client(timeout=60, verify=verify)
        try:
            r = client.post(f"{url.rstrip('/')}/oauth2/token", auth=(client_id, secret),
                            data={"grant_type": "client_credentials"})
        except httpx.HTTPError as exc:
            raise NbiError(0, f"the NBI at {url} did not answer: {exc}") from None
        finally:
            if http is None:
                client.close()
        if r.status_code != 200:
            raise NbiError(r.status_code, f"no token for client {client_id!r}: "
                                          f"{r.json().get('detail', r.text)}")
        return r.json()

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        try:
            r = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise NbiError(0, f"the NBI at {self.http.base_url} did not answer: {exc}") \
                from None
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail") or r.text
            except ValueError:
                detail = r.text
            raise NbiError(r.status_code, f"{method} {path}: {r.status_code} {detail}")
        return r

    def get(self, path: str, **params) -> object:
        return self.request("GET", path, params=params or None).json()

    def list(self, path: str, **params) -> list:
        """Every item of a paged list (follows ``Link: rel="next"``)."""
        out: list = []
        r = self.request("GET", path, params=params or None)
        while True:
            out += r.json()
            nxt = r.links.get("next", {}).get("url")
            if not nxt:
                return out
            r = self.request("GET", nxt)

    # ---- catalogue -------------------------------------------------------------------------
    def onboard_vnfd(self, path: str | Path) -> dict:
        pkg = self.request("POST", "/vnfpkgm/v1/vnf_packages", json={}).json()
        try:
            self.request("PUT", f"/vnfpkgm/v1/vnf_packages/{pkg['id']}/package_content",
                         content=Path(path).read_bytes(),
                         headers={"Content-Type": _content_type(path)})
        except NbiError:
            self.request("DELETE", f"/vnfpkgm/v1/vnf_packages/{pkg['id']}")
            raise
        return self.get(f"/vnfpkgm/v1/vnf_packages/{pkg['id']}")

    def onboard_nsd(self, path: str | Path) -> dict:
        info = self.request("POST", "/nsd/v1/ns_descriptors", json={}).json()
        try:
            self.request("PUT", f"/nsd/v1/ns_descriptors/{info['id']}/nsd_content",
                         content=Path(path).read_bytes(),
                         headers={"Content-Type": _content_type(path)})
        except NbiError:
            self.request("DELETE", f"/nsd/v1/ns_descriptors/{info['id']}")
            raise
        return self.get(f"/nsd/v1/ns_descriptors/{info['id']}")

    # ---- NS lifecycle ----------------------------------------------------------------------
    def ns_by_name_or_id(self, name: str) -> dict:
        """The NS instance with this id, or the one with this name (error if several)."""
        found = self.list("/nslcm/v1/ns_instances", all_fields="",
                          filter=f"(eq,id,{_quote(name)})")
        if not found:
            found = self.list("/nslcm/v1/ns_instances", all_fields="",
                              filter=f"(eq,nsInstanceName,{_quote(name)})")
        if not found:
            raise NbiError(404, f"no NS instance named or numbered {name!r}")
        if len(found) > 1:
            raise NbiError(409, f"{len(found)} NS instances are named {name!r}: "
                                f"{', '.join(n['id'] for n in found)}; give the id")
        return found[0]

    def task(self, ns_id: str, task: str, body: dict) -> str:
        """POST an LCM task; the id of the occurrence from the ``Location`` header."""
        r = self.request("POST", f"/nslcm/v1/ns_instances/{ns_id}/{task}", json=body)
        return r.headers["Location"].rstrip("/").rsplit("/", 1)[1]

    def op_task(self, op_id: str, task: str) -> httpx.Response:
        return self.request("POST", f"/nslcm/v1/ns_lcm_op_occs/{op_id}/{task}")

    def wait(self, op_id: str, timeout: float = 600.0, poll: float = 0.2) -> dict:
        """Poll the occurrence until it is no longer PROCESSING or ROLLING_BACK."""
        deadline = time.monotonic() + timeout
        while True:
            op = self.get(f"/nslcm/v1/ns_lcm_op_occs/{op_id}")
            if op["operationState"] not in ("PROCESSING", "ROLLING_BACK"):
                return op
            if time.monotonic() > deadline:
                raise NbiError(0, f"operation {op_id} still {op['operationState']} after "
                                  f"{timeout:.0f} s")
            time.sleep(poll)


def _content_type(path) -> str:
    return "application/zip" if str(path).endswith(".zip") else "text/plain"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
