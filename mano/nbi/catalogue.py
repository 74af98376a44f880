"""SOL005 NSD management (clause 5) and VNF package management (clause 9) over the NFVO's
catalogue.

An ``NsdInfo`` (or ``VnfPkgInfo``) is created empty (CREATED); uploading its content (a
descriptor in this testbed's YAML format, or a zip holding one, see ``descriptor_text``)
onboards the descriptor into the NFVO (ONBOARDED) or is refused with the descriptor's own
error (then it stays CREATED and may be uploaded again). Each information object belongs to
the tenant that created it. A descriptor id (``nsdId``, ``vnfdId``) is global in the NFVO:
a second package of the same id is a conflict.
"""
from __future__ import annotations

import io
import re
import tempfile
import uuid
import zipfile
from pathlib import Path

import yaml

from mano import descriptors as D
from mano.errors import ConflictError, DescriptorError, NotFoundError
from mano.nbi.records import Records

NSD_INFO, VNF_PKG, NS = "nsd_info", "vnf_pkg", "ns"
PROVIDER = "nfv-testbed"   # the VNFDs here name no provider


def descriptor_text(body: bytes, what: str) -> tuple[str, str]:
    """(YAML text, file name) of an uploaded descriptor. A zip (SOL004 style) names its
    descriptor in ``TOSCA-Metadata/TOSCA.meta`` (``Entry-Definitions: PATH``) or holds one
    ``.yaml``/``.yml`` file; anything else must be UTF-8 YAML. ``DescriptorError`` otherwise."""
    if body[:4] == b"PK\x03\x04":
        try:
            z = zipfile.ZipFile(io.BytesIO(body))
        except zipfile.BadZipFile as exc:
            raise DescriptorError(f"{what}: not a valid zip: {exc}") from None
        names = z.namelist()
        entry = None
        if "TOSCA-Metadata/TOSCA.meta" in names:
            meta = z.read("TOSCA-Metadata/TOSCA.meta").decode("utf-8", "replace")
            m = re.search(r"^Entry-Definitions:\s*(\S+)\s*$", meta, re.MULTILINE)
            if m is None:
                raise DescriptorError(f"{what}: TOSCA-Metadata/TOSCA.meta has no "
                                      f"Entry-Definitions line")
            entry = m.group(1)
            if entry not in names:
                raise DescriptorError(f"{what}: Entry-Definitions {entry!r} is not in the zip; "
                                      f"it holds {', '.join(names)}")
        else:
            yamls = [n for n in names if n.endswith((".yaml", ".yml"))]
            if len(yamls) != 1:
                raise DescriptorError(
                    f"{what}: a zip without TOSCA-Metadata/TOSCA.meta must hold exactly one "
                    f".yaml file; it holds {', '.join(yamls) or 'none'}")
            entry = yamls[0]
        data, name = z.read(entry), Path(entry).name
    else:
        data, name = body, f"{what}.yaml"
    try:
        return data.decode("utf-8"), name
    except UnicodeDecodeError:
        raise DescriptorError(f"{what}: the content is neither a zip nor UTF-8 YAML") from None


def _parse(text: str, name: str, loader):
    with tempfile.TemporaryDirectory(prefix="nbi-") as d:
        p = Path(d) / name
        p.write_text(text)
        return loader(p)


def _link(root: str, path: str) -> dict:
    return {"href": f"{root}{path}"}


class Catalogue:
    """NsdInfo and VnfPkgInfo resources of each tenant; views are SOL005 JSON dicts."""

    def __init__(self, nfvo, records: Records):
        self.nfvo, self.records = nfvo, records

    # ---- ownership -------------------------------------------------------------------------
    def _own(self, kind: str, id: str, tenant: str) -> dict:
        found = self.records.find(kind, id)
        if found is None or found[0] != tenant:
            what = "NSD info" if kind == NSD_INFO else "VNF package"
            raise NotFoundError(f"no {what} {id!r}")
        return found[1]

    def nsd_info_for(self, nsd_id: str, tenant: str) -> str:
        """The id of the tenant's ONBOARDED NsdInfo whose nsdId is ``nsd_id``."""
        for iid, t, info in self.records.list(NSD_INFO, tenant):
            if info.get("nsdId") == nsd_id and info["nsdOnboardingState"] == "ONBOARDED":
                return iid
        raise NotFoundError(f"no onboarded NSD with nsdId {nsd_id!r}; onboard it with "
                            f"POST /nsd/v1/ns_descriptors and PUT .../nsd_content")

    # ---- NSDs ------------------------------------------------------------------------------
    def create_nsd_info(self, tenant: str, user_data: dict | None) -> str:
        iid = str(uuid.uuid4())
        self.records.put(NSD_INFO, iid, tenant, {
            "nsdOnboardingState": "CREATED", "nsdOperationalState": "DISABLED",
            "userDefinedData": user_data or {}})
        return iid

    def nsd_info(self, iid: str, tenant: str, root: str) -> dict:
        info = self._own(NSD_INFO, iid, tenant)
        out = {"id": iid}
        nsd_id = info.get("nsdId")
        state = info["nsdOnboardingState"]
        if nsd_id is not None and state == "ONBOARDED":
            row = self.nfvo.store.get_nsd(nsd_id)
            nsd = self.nfvo.nsd(nsd_id)
            out.update(nsdId=nsd.id, nsdName=nsd.name, nsdVersion=nsd.version,
                       nsdDesigner=PROVIDER, nsdInvariantId=nsd.id,
                       vnfPkgIds=[self._pkg_of(v) for v in nsd.vnfs])
            op_state = "ENABLED" if row["enabled"] else "DISABLED"
        else:
            op_state = info["nsdOperationalState"]
        in_use = nsd_id is not None and state == "ONBOARDED" and bool(
            self.nfvo.store.list_ns_instances(nsd_id=nsd_id))
        out.update(nsdOnboardingState=state, nsdOperationalState=op_state,
                   nsdUsageState="IN_USE" if in_use else "NOT_IN_USE",
                   userDefinedData=info.get("userDefinedData", {}),
                   _links={"self": _link(root, f"/nsd/v1/ns_descriptors/{iid}"),
                           "nsd_content": _link(root,
                                                f"/nsd/v1/ns_descriptors/{iid}/nsd_content")})
        return out

    def list_nsd_infos(self, tenant: str, root: str) -> list[dict]:
        return [self.nsd_info(i, tenant, root) for i, _, _ in self.records.list(NSD_INFO, tenant)]

    def _pkg_of(self, vnfd_id: str) -> str:
        for pid, _, p in self.records.list(VNF_PKG):
            if p.get("vnfdId") == vnfd_id and p["onboardingState"] == "ONBOARDED":
                return pid
        return vnfd_id

    def upload_nsd(self, iid: str, tenant: str, body: bytes) -> None:
        """Onboard the NSD in ``body``; its VNFDs must be onboarded already (as packages)."""
        info = self._own(NSD_INFO, iid, tenant)
        if info["nsdOnboardingState"] != "CREATED":
            raise ConflictError(f"NSD info {iid} is {info['nsdOnboardingState']}; content can "
                                f"be uploaded only once, while CREATED")
        text, name = descriptor_text(body, "nsd_content")
        nsd = _parse(text, name, D.load_nsd)
        for other, _, o in self.records.list(NSD_INFO):
            if o.get("nsdId") == nsd.id and other != iid:
                raise ConflictError(f"an NSD with nsdId {nsd.id!r} is onboarded already (NSD "
                                    f"info {other}); delete it first or change the id")
        self.nfvo.onboard_nsd(nsd)
        self.nfvo.set_nsd_enabled(nsd.id, True)
        info.update(nsdOnboardingState="ONBOARDED", nsdOperationalState="ENABLED",
                    nsdId=nsd.id)
        self.records.put(NSD_INFO, iid, tenant, info)

    def nsd_content(self, iid: str, tenant: str) -> str:
        info = self._own(NSD_INFO, iid, tenant)
        if info["nsdOnboardingState"] != "ONBOARDED":
            raise ConflictError(f"NSD info {iid} is {info['nsdOnboardingState']}: no content")
        return yaml.safe_dump(self.nfvo.store.get_nsd(info["nsdId"])["data"], sort_keys=False)

    def patch_nsd_info(self, iid: str, tenant: str, state: str | None,
                       user_data: dict | None) -> dict:
        info = self._own(NSD_INFO, iid, tenant)
        if state is not None:
            if info["nsdOnboardingState"] != "ONBOARDED":
                raise ConflictError(f"NSD info {iid} is {info['nsdOnboardingState']}; only an "
                                    f"ONBOARDED NSD can be enabled or disabled")
            current = "ENABLED" if self.nfvo.store.get_nsd(info["nsdId"])["enabled"] \
                else "DISABLED"
            if current == state:
                raise ConflictError(f"NSD info {iid} is {state} already")
            self.nfvo.set_nsd_enabled(info["nsdId"], state == "ENABLED")
            info["nsdOperationalState"] = state
        if user_data is not None:
            info["userDefinedData"] = {**info.get("userDefinedData", {}), **user_data}
        self.records.put(NSD_INFO, iid, tenant, info)
        out = {}
        if state is not None:
            out["nsdOperationalState"] = state
        if user_data is not None:
            out["userDefinedData"] = user_data
        return out

    def delete_nsd_info(self, iid: str, tenant: str) -> None:
        """SOL005 5.4.3.3.5: only a DISABLED NSD not IN_USE by any NS instance is deleted."""
        info = self._own(NSD_INFO, iid, tenant)
        nsd_id = info.get("nsdId")
        if nsd_id is not None and info["nsdOnboardingState"] == "ONBOARDED":
            if self.nfvo.store.get_nsd(nsd_id)["enabled"]:
                raise ConflictError(f"NSD info {iid} is ENABLED; disable it first (PATCH "
                                    f"nsdOperationalState DISABLED)")
            users = [r["id"] for r in self.nfvo.store.list_ns_instances(nsd_id=nsd_id)]
            if users:
                raise ConflictError(f"NSD info {iid} is IN_USE by NS instance(s) "
                                    f"{', '.join(users)}; delete them first")
            self.nfvo.delete_nsd(nsd_id)
        self.records.delete(NSD_INFO, iid)

    # ---- VNF packages ----------------------------------------------------------------------
    def create_vnf_pkg(self, tenant: str, user_data: dict | None) -> str:
        pid = str(uuid.uuid4())
        self.records.put(VNF_PKG, pid, tenant, {"onboardingState": "CREATED",
                                                "userDefinedData": user_data or {}})
        return pid

    def vnf_pkg(self, pid: str, tenant: str, root: str) -> dict:
        p = self._own(VNF_PKG, pid, tenant)
        out: dict = {"id": pid}
        base = f"/vnfpkgm/v1/vnf_packages/{pid}"
        links = {"self": _link(root, base),
                 "packageContent": _link(root, f"{base}/package_content")}
        in_use = False
        if p["onboardingState"] == "ONBOARDED":
            v = self.nfvo.vnfd(p["vnfdId"])
            out.update(vnfdId=v.id, vnfProvider=PROVIDER, vnfProductName=v.name,
                       vnfSoftwareVersion=v.version, vnfdVersion=v.version)
            links["vnfd"] = _link(root, f"{base}/vnfd")
            in_use = bool(self.nfvo.store.list_vnf_instances(vnfd_id=v.id)) or any(
                v.id in self.nfvo.nsd(r["id"]).vnfs for r in self.nfvo.store.list_nsds())
        out.update(onboardingState=p["onboardingState"],
                   operationalState="ENABLED" if p["onboardingState"] == "ONBOARDED"
                   else "DISABLED", usageState="IN_USE" if in_use else "NOT_IN_USE",
                   userDefinedData=p.get("userDefinedData", {}), _links=links)
        return out

    def list_vnf_pkgs(self, tenant: str, root: str) -> list[dict]:
        return [self.vnf_pkg(i, tenant, root) for i, _, _ in self.records.list(VNF_PKG, tenant)]

    def upload_vnf_pkg(self, pid: str, tenant: str, body: bytes) -> None:
        p = self._own(VNF_PKG, pid, tenant)
        if p["onboardingState"] != "CREATED":
            raise ConflictError(f"VNF package {pid} is {p['onboardingState']}; content can be "
                                f"uploaded only once, while CREATED")
        text, name = descriptor_text(body, "package_content")
        vnfd = _parse(text, name, D.load_vnfd)
        for other, _, o in self.records.list(VNF_PKG):
            if o.get("vnfdId") == vnfd.id and other != pid:
                raise ConflictError(f"a VNF package with vnfdId {vnfd.id!r} is onboarded "
                                    f"already ({other}); delete it first or change the id")
        self.nfvo.onboard_vnfd(vnfd)
        p.update(onboardingState="ONBOARDED", vnfdId=vnfd.id)
        self.records.put(VNF_PKG, pid, tenant, p)

    def vnfd_text(self, pid: str, tenant: str) -> str:
        p = self._own(VNF_PKG, pid, tenant)
        if p["onboardingState"] != "ONBOARDED":
            raise ConflictError(f"VNF package {pid} is {p['onboardingState']}: no VNFD yet")
        return yaml.safe_dump(self.nfvo.store.get_vnfd(p["vnfdId"])["data"], sort_keys=False)

    def delete_vnf_pkg(self, pid: str, tenant: str) -> None:
        p = self._own(VNF_PKG, pid, tenant)
        if p["onboardingState"] == "ONBOARDED":
            vid = p["vnfdId"]
            users = [r["id"] for r in self.nfvo.store.list_nsds()
                     if vid in self.nfvo.nsd(r["id"]).vnfs]
            if users:
                raise ConflictError(f"VNF package {pid} (vnfdId {vid}) is IN_USE by NSD(s) "
                                    f"{', '.join(users)}; delete those first")
            self.nfvo.store.delete_vnfd(vid)   # ConflictError while VNF records name it
        self.records.delete(VNF_PKG, pid)
