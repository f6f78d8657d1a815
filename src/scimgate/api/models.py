"""Request and response models: they make the OpenAPI document precise and validate
every body before a service sees it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from scimgate.events.outbox import EVENT_TYPES

Provider = Literal["entra", "okta", "onelogin", "jumpcloud", "generic"]
if TYPE_CHECKING:
    EventType = str
else:
    # Built from the outbox's list, so a new event type needs no change here.
    EventType = Literal[EVENT_TYPES]


def _utc(value: datetime) -> datetime:
    """Bring a timestamp to UTC; refuse one that leaves the representable range."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range") from None


Timestamp = Annotated[AwareDatetime, AfterValidator(_utc)]
"""An RFC 3339 timestamp with an offset (a naive one is ambiguous)."""


def _as_text(value: Any) -> Any:
    """SCIM documents are validated on the way in, but a host app must never get a 500
    because an IdP put a number where a string belongs."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return None
    return str(value)


Text = Annotated[str | None, BeforeValidator(_as_text)]


def _no_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    if isinstance(value, list):
        for item in value:
            _no_nul(item)
    if isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key)
            _no_nul(item)
    return value


class RequestModel(BaseModel):
    """Request bodies: unknown fields are errors (a typo must not pass silently), and no
    string may carry NUL (PostgreSQL text cannot store it)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _reject_nul(cls, value: Any) -> Any:
        return _no_nul(value)


class ErrorBody(BaseModel):
    code: str = Field(description="Stable, machine-readable: unauthorized, not_found, …")
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


# -- organizations --------------------------------------------------------------------------


class Organization(BaseModel):
    id: str
    name: str
    external_id: str | None = Field(description="The host app's own id for this customer.")
    created_at: datetime
    updated_at: datetime


class OrganizationCreate(RequestModel):
    name: str = Field(min_length=1, max_length=1000)
    external_id: str | None = Field(default=None, min_length=1, max_length=255)


class OrganizationUpdate(RequestModel):
    """Only the fields present change."""

    name: str | SkipJsonSchema[None] = Field(default=None, min_length=1, max_length=1000)
    external_id: str | None = Field(
        default=None, min_length=1, max_length=255, description="null clears it"
    )


class OrganizationPage(BaseModel):
    data: list[Organization]
    next_cursor: str | None = Field(description="Pass as `after` for the next page; null: done.")


# -- directories ----------------------------------------------------------------------------


class DirectoryRules(RequestModel):
    """What the host app accepts from the IdP; a SCIM write breaking a rule is refused
    with 400 invalidValue naming the attribute, and nothing is stored."""

    required: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=list,
        max_length=100,
        description='SCIM attribute paths, e.g. `emails[type eq "work"].value`.',
    )
    max_lengths: dict[str, Annotated[int, Field(gt=0, le=2**31 - 1)]] = Field(
        default_factory=dict, description="Attribute path → most characters allowed."
    )
    user_name_pattern: str | None = Field(
        default=None, max_length=500, description="A regular expression userName must match."
    )
    allowed_email_domains: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(
        default_factory=list, max_length=1000
    )


class Rules(BaseModel):
    """Rules as stored (see :class:`DirectoryRules` for what each one means)."""

    required: list[str]
    max_lengths: dict[str, int]
    user_name_pattern: str | None
    allowed_email_domains: list[str]


class Directory(BaseModel):
    id: str
    organization_id: str
    name: str
    provider: Provider
    enabled: bool
    scim_base_url: str
    tenant_url: str = Field(description="What the IdP admin pastes as the Tenant URL.")
    token_hint: str
    token_rotated_at: datetime
    rules: Rules | None = Field(description="null: no rules.")
    created_at: datetime
    updated_at: datetime


class DirectoryWithToken(Directory):
    token: str = Field(description="The SCIM bearer token. Shown only in this response.")


class DirectoryCreate(RequestModel):
    organization_id: str = Field(min_length=1, max_length=255)
    name: str | None = Field(default=None, min_length=1, max_length=1000)
    provider: Provider = "generic"


class DirectoryUpdate(RequestModel):
    """Only the fields present change."""

    name: str | SkipJsonSchema[None] = Field(default=None, min_length=1, max_length=1000)
    enabled: bool | SkipJsonSchema[None] = None


class DirectoryPage(BaseModel):
    data: list[Directory]
    next_cursor: str | None


# -- users and groups -----------------------------------------------------------------------


class User(BaseModel):
    """A user flattened for apps that don't parse SCIM; ``raw`` is the full resource."""

    id: str
    directory_id: str
    organization_id: str
    external_id: Text
    username: Text
    email: Text = Field(description="Primary email, else the work one, else the first.")
    first_name: Text
    last_name: Text
    display_name: Text
    active: bool
    title: Text
    department: Text
    employee_number: Text
    manager_id: Text
    groups: list[str] | None = Field(
        default=None, description="Direct group ids; only with `include=groups`."
    )
    created_at: datetime
    updated_at: datetime
    raw: dict[str, Any] = Field(description="The SCIM resource as stored.")


class UserPage(BaseModel):
    data: list[User]
    next_cursor: str | None


class Group(BaseModel):
    id: str
    directory_id: str
    organization_id: str
    display_name: Text
    external_id: Text
    member_count: int = Field(description="Direct members (users and groups).")
    created_at: datetime
    updated_at: datetime
    raw: dict[str, Any] = Field(description="The SCIM resource as stored, without members.")


class GroupPage(BaseModel):
    data: list[Group]
    next_cursor: str | None


class Member(BaseModel):
    type: Literal["user", "group"]
    id: str
    display: Text
    user: User | None = None
    group: Group | None = None


class MemberPage(BaseModel):
    data: list[Member]
    next_cursor: str | None


# -- events ---------------------------------------------------------------------------------


class Event(BaseModel):
    id: str
    type: EventType
    directory_id: str
    organization_id: str
    organization_external_id: str | None
    occurred_at: datetime
    data: dict[str, Any]


class EventPage(BaseModel):
    data: list[Event]
    next_cursor: str = Field(
        description="Always set: pass it as `after` to continue (also after an empty page)."
    )
    has_more: bool = Field(description="More events are already available.")


# -- webhooks -------------------------------------------------------------------------------


DeliveryStatus = Literal["pending", "succeeded", "failed"]


class WebhookEndpoint(BaseModel):
    id: str
    organization_id: str
    directory_id: str | None = Field(description="null: every directory of the organization.")
    url: str
    event_types: list[str] | None = Field(description="null: every event type.")
    description: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


class WebhookEndpointWithSecret(WebhookEndpoint):
    secret: str = Field(description="The signing secret (whsec_…). Shown only in this response.")


class WebhookEndpointCreate(RequestModel):
    organization_id: str = Field(min_length=1, max_length=255)
    directory_id: str | None = Field(
        default=None, min_length=1, max_length=255, description="Only this directory's events."
    )
    url: str = Field(min_length=1, max_length=2048, description="http(s); public addresses only.")
    event_types: list[EventType] | None = Field(
        default=None, min_length=1, description="null: every event type."
    )
    description: str | None = Field(default=None, max_length=1000)
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=256,
        description="Bring your own Standard Webhooks secret (whsec_ + base64); default: new.",
    )


class WebhookEndpointUpdate(RequestModel):
    """Only the fields present change."""

    url: str | SkipJsonSchema[None] = Field(default=None, min_length=1, max_length=2048)
    event_types: list[EventType] | None = Field(
        default=None, min_length=1, description="null: every event type."
    )
    description: str | None = Field(default=None, max_length=1000)
    enabled: bool | SkipJsonSchema[None] = None

    @field_validator("url", "enabled", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null (leave it out to keep it)")
        return value


class WebhookEndpointList(BaseModel):
    data: list[WebhookEndpoint]


class WebhookSecret(BaseModel):
    secret: str = Field(description="The new signing secret. Shown only in this response.")


class WebhookAttempt(BaseModel):
    attempted_at: datetime
    status_code: int | None = Field(description="null: no response (refused, timeout).")
    latency_ms: float
    response_excerpt: str | None
    error: str | None


class WebhookDelivery(BaseModel):
    id: str
    endpoint_id: str
    event_id: str = Field(description="Also the webhook-id header; stable across replays.")
    event_type: str | None
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    attempts: list[WebhookAttempt]


class WebhookDeliveryList(BaseModel):
    data: list[WebhookDelivery]
    next_cursor: str | None = Field(description="Pass as `before` for older deliveries.")
