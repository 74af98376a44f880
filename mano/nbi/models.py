"""pydantic v2 models of the SOL005 resources and requests the NBI serves.

Names and fields follow ETSI GS NFV-SOL 005 (NsdInfo 5.5.2.2, VnfPkgInfo 9.5.2.5,
NsInstance 6.5.2.10, NsLcmOpOcc 6.5.2.3, CreateNsRequest 6.5.2.7, InstantiateNsRequest
6.5.2.11, ScaleNsRequest 6.5.2.14, HealNsRequest 6.5.2.13, TerminateNsRequest 6.5.2.15)
and SOL013 (ProblemDetails 6.3, ApiVersionInformation 9.3). Only the attributes this NFVO
fills are declared; responses may carry the optional ones SOL005 defines, and attribute
selectors may leave the complex optional ones out. Requests forbid unknown top-level
attributes only where SOL005 defines the full set this NFVO acts on.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ProblemDetails(_Open):
    """SOL013 6.3: every error body."""

    type: str | None = None
    title: str | None = None
    status: int
    detail: str
    instance: str | None = None


class Link(BaseModel):
    href: str


class ApiVersion(BaseModel):
    version: str
    isDeprecated: bool | None = None
    retirementDate: str | None = None


class ApiVersionInformation(BaseModel):
    uriPrefix: str
    apiVersions: list[ApiVersion]


# ---- NSD management ---------------------------------------------------------------------------
class CreateNsdInfoRequest(_Open):
    userDefinedData: dict[str, Any] | None = None


class NsdInfoModifications(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nsdOperationalState: Literal["ENABLED", "DISABLED"] | None = None
    userDefinedData: dict[str, Any] | None = None


class NsdInfoLinks(_Open):
    self: Link
    nsd_content: Link


class NsdInfo(_Open):
    id: str
    nsdId: str | None = None
    nsdName: str | None = None
    nsdVersion: str | None = None
    nsdDesigner: str | None = None
    nsdInvariantId: str | None = None
    vnfPkgIds: list[str] | None = None
    nsdOnboardingState: Literal["CREATED", "UPLOADING", "PROCESSING", "ONBOARDED", "ERROR"]
    onboardingFailureDetails: ProblemDetails | None = None
    nsdOperationalState: Literal["ENABLED", "DISABLED"]
    nsdUsageState: Literal["IN_USE", "NOT_IN_USE"]
    userDefinedData: dict[str, Any] | None = None
    links: NsdInfoLinks = Field(alias="_links")


# ---- VNF package management -------------------------------------------------------------------
class CreateVnfPkgInfoRequest(_Open):
    userDefinedData: dict[str, Any] | None = None


class VnfPkgLinks(_Open):
    self: Link
    packageContent: Link
    vnfd: Link | None = None


class VnfPkgInfo(_Open):
    id: str
    vnfdId: str | None = None
    vnfProvider: str | None = None
    vnfProductName: str | None = None
    vnfSoftwareVersion: str | None = None
    vnfdVersion: str | None = None
    onboardingState: Literal["CREATED", "UPLOADING", "PROCESSING", "ONBOARDED", "ERROR"]
    operationalState: Literal["ENABLED", "DISABLED"]
    usageState: Literal["IN_USE", "NOT_IN_USE"]
    onboardingFailureDetails: ProblemDetails | None = None
    userDefinedData: dict[str, Any] | None = None
    links: VnfPkgLinks = Field(alias="_links")


# ---- NS lifecycle management ------------------------------------------------------------------
class CreateNsRequest(_Open):
    nsdId: str = Field(min_length=1, description="the nsdId of an onboarded NSD")
    nsName: str = Field(min_length=1)
    nsDescription: str


class InstantiateNsRequest(_Open):
    nsFlavourId: str = Field(min_length=1, description='"default": NSDs here have one '
                                                       'deployment flavour')
    nsInstantiationLevelId: str | None = None
    additionalParamsForNs: dict[str, Any] | None = None


class ScaleByStepData(_Open):
    aspectId: str
    numberOfSteps: int = Field(1, ge=1)


class ScaleVnfData(_Open):
    vnfInstanceId: str = Field(min_length=1)
    scaleVnfType: Literal["SCALE_OUT", "SCALE_IN"]
    scaleByStepData: ScaleByStepData | None = None


class ScaleNsRequest(_Open):
    scaleType: Literal["SCALE_NS", "SCALE_VNF"]
    scaleVnfData: list[ScaleVnfData] | None = None
    scaleNsData: dict[str, Any] | None = None


class HealVnfData(_Open):
    vnfInstanceId: str = Field(min_length=1)
    cause: str | None = None
    additionalParams: dict[str, Any] | None = Field(
        None, description='{"vnfcInstanceId": ID, "mode": "restart"|"recreate"}')


class HealNsRequest(_Open):
    healNsData: dict[str, Any] | None = None
    healVnfData: list[HealVnfData] | None = None


class TerminateNsRequest(_Open):
    terminationTime: str | None = None


class ResourceHandle(_Open):
    resourceId: str


class VnfcResourceInfo(_Open):
    id: str
    vduId: str
    computeResource: ResourceHandle
    metadata: dict[str, Any] | None = None


class ScaleInfo(_Open):
    aspectId: str
    scaleLevel: int


class InstantiatedVnfInfo(_Open):
    flavourId: str
    vnfState: Literal["STARTED", "STOPPED"]
    scaleStatus: list[ScaleInfo] | None = None
    vnfcResourceInfo: list[VnfcResourceInfo] | None = None


class VnfInstance(_Open):
    id: str
    vnfInstanceName: str | None = None
    vnfdId: str
    vnfProvider: str
    vnfProductName: str
    vnfSoftwareVersion: str
    vnfdVersion: str
    vnfPkgId: str
    instantiationState: Literal["NOT_INSTANTIATED", "INSTANTIATED"]
    instantiatedVnfInfo: InstantiatedVnfInfo | None = None


class NsInstanceLinks(_Open):
    self: Link


class NsInstance(_Open):
    id: str
    nsInstanceName: str
    nsInstanceDescription: str
    nsdId: str
    nsdInfoId: str
    flavourId: str | None = None
    vnfInstance: list[VnfInstance] | None = None
    nsState: Literal["NOT_INSTANTIATED", "INSTANTIATED"]
    links: NsInstanceLinks = Field(alias="_links")


OperationState = Literal["PROCESSING", "COMPLETED", "PARTIALLY_COMPLETED", "FAILED_TEMP",
                         "FAILED", "ROLLING_BACK", "ROLLED_BACK"]


class NsLcmOpOccLinks(_Open):
    self: Link
    nsInstance: Link


class NsLcmOpOcc(_Open):
    id: str
    operationState: OperationState
    stateEnteredTime: str
    nsInstanceId: str
    lcmOperationType: Literal["INSTANTIATE", "SCALE", "UPDATE", "TERMINATE", "HEAL"]
    startTime: str
    isAutomaticInvocation: bool
    operationParams: dict[str, Any] | None = None
    isCancelPending: bool
    error: ProblemDetails | None = None
    links: NsLcmOpOccLinks = Field(alias="_links")


# ---- OAuth 2.0 and clients --------------------------------------------------------------------
class TokenResponse(BaseModel):
    """RFC 6749 clause 5.1."""

    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int


class CreateClientRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    clientId: str = Field(min_length=1, max_length=64)
    project: str = Field(min_length=1, max_length=64)


class ClientInfo(BaseModel):
    clientId: str
    project: str


class ClientCreated(ClientInfo):
    clientSecret: str


# ---- subscriptions (SOL005 6.5.2.2, 6.5.3.8) ---------------------------------------------------
class NsInstanceSubscriptionFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nsdIds: list[str] | None = None
    nsInstanceIds: list[str] | None = None
    nsInstanceNames: list[str] | None = None


LcmOpType = Literal["INSTANTIATE", "SCALE", "UPDATE", "TERMINATE", "HEAL"]


class LifecycleChangeNotificationsFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nsInstanceSubscriptionFilter: NsInstanceSubscriptionFilter | None = None
    notificationTypes: list[Literal["NsLcmOperationOccurrenceNotification",
                                    "NsIdentifierCreationNotification",
                                    "NsIdentifierDeletionNotification"]] | None = None
    operationTypes: list[LcmOpType] | None = None
    operationStates: list[OperationState] | None = None


class LccnSubscriptionRequest(BaseModel):
    filter: LifecycleChangeNotificationsFilter | None = None
    callbackUri: str = Field(min_length=1, pattern=r"^https?://")
    authentication: dict[str, Any] | None = None


class SubscriptionLinks(_Open):
    self: Link


class LccnSubscription(_Open):
    id: str
    filter: LifecycleChangeNotificationsFilter | None = None
    callbackUri: str
    links: SubscriptionLinks = Field(alias="_links")
