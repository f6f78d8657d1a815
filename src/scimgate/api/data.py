"""Directory data, read-only: users, groups, memberships, and the event feed.

Listings need a scope (a directory, an organization, or for users a group): the host
app always knows which customer it is asking about, and a scope is what lets every page
walk an index instead of the whole table."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from scimgate.api.deps import After, Limit, Svc, errors
from scimgate.api.errors import ApiError
from scimgate.api.models import (
    EventPage,
    EventType,
    Group,
    GroupPage,
    MemberPage,
    Timestamp,
    User,
    UserPage,
)
from scimgate.directory import reads
from scimgate.events import feed

router = APIRouter()

Id = Annotated[str, Path(min_length=1, max_length=255)]
OptionalId = Annotated[str | None, Query(min_length=1, max_length=255)]
Include = Annotated[
    Literal["groups"] | None,
    Query(description="`groups`: add each user's direct group ids as `groups`."),
]
UpdatedSince = Annotated[
    Timestamp | None,
    Query(
        description="Only resources changed at or after this time; pages are then ordered "
        "by last change, so a sync job can resume where it stopped."
    ),
]
_MAX_FEED_POSITION = 2**63 - 1


def _scope_required(what: str, extra: str = "") -> ApiError:
    return ApiError(
        400,
        "invalid_request",
        f"listing {what} needs directory_id, organization_id or organization_external_id" + extra,
    )


# -- users ----------------------------------------------------------------------------------


@router.get(
    "/users",
    response_model=UserPage,
    tags=["users"],
    responses=errors(400),
    summary="List users (normalized), filtered and cursor-paged",
)
async def list_users(
    svc: Svc,
    limit: Limit = 100,
    after: After = None,
    directory_id: OptionalId = None,
    organization_id: OptionalId = None,
    organization_external_id: OptionalId = None,
    external_id: Annotated[
        str | None, Query(min_length=1, max_length=1000, description="The user's externalId.")
    ] = None,
    group_id: Annotated[
        str | None,
        Query(min_length=1, max_length=255, description="Direct members of this group."),
    ] = None,
    active: bool | None = None,
    updated_since: UpdatedSince = None,
    include: Include = None,
) -> UserPage:
    async with svc.db.read() as conn:
        scope = await reads.directory_scope(
            conn,
            directory_id=directory_id,
            organization_id=organization_id,
            organization_external_id=organization_external_id,
        )
        if scope is None and group_id is None:
            raise _scope_required("users", " (or group_id)")
        page = await reads.list_users(
            conn,
            reads.UserFilter(
                scope=scope,
                external_id=external_id,
                group_id=group_id,
                active=active,
                updated_since=updated_since,
            ),
            limit=limit,
            cursor=after,
            include_groups=include == "groups",
        )
    return UserPage.model_validate({"data": page.items, "next_cursor": page.next_cursor})


@router.get(
    "/users/{user_id}",
    response_model=User,
    tags=["users"],
    responses=errors(404),
    summary="Get one user (normalized)",
)
async def get_user(svc: Svc, user_id: Id, include: Include = None) -> User:
    async with svc.db.read() as conn:
        user = await reads.get_user(conn, user_id, include_groups=include == "groups")
    return User.model_validate(user)


@router.get(
    "/users/{user_id}/groups",
    response_model=GroupPage,
    tags=["users"],
    responses=errors(400, 404),
    summary="The groups a user is a direct member of",
)
async def user_groups(svc: Svc, user_id: Id, limit: Limit = 100, after: After = None) -> GroupPage:
    async with svc.db.read() as conn:
        page = await reads.groups_of_user(conn, user_id, limit=limit, cursor=after)
    return GroupPage.model_validate({"data": page.items, "next_cursor": page.next_cursor})


# -- groups ---------------------------------------------------------------------------------


@router.get(
    "/groups",
    response_model=GroupPage,
    tags=["groups"],
    responses=errors(400),
    summary="List groups (normalized, with member counts), cursor-paged",
)
async def list_groups(
    svc: Svc,
    limit: Limit = 100,
    after: After = None,
    directory_id: OptionalId = None,
    organization_id: OptionalId = None,
    organization_external_id: OptionalId = None,
    external_id: Annotated[str | None, Query(min_length=1, max_length=1000)] = None,
    display_name: Annotated[
        str | None,
        Query(min_length=1, max_length=1000, description="Exact, case-insensitive."),
    ] = None,
    updated_since: UpdatedSince = None,
) -> GroupPage:
    async with svc.db.read() as conn:
        scope = await reads.directory_scope(
            conn,
            directory_id=directory_id,
            organization_id=organization_id,
            organization_external_id=organization_external_id,
        )
        if scope is None:
            raise _scope_required("groups")
        page = await reads.list_groups(
            conn,
            reads.GroupFilter(
                scope=scope,
                external_id=external_id,
                display_name=display_name,
                updated_since=updated_since,
            ),
            limit=limit,
            cursor=after,
        )
    return GroupPage.model_validate({"data": page.items, "next_cursor": page.next_cursor})


@router.get(
    "/groups/{group_id}",
    response_model=Group,
    tags=["groups"],
    responses=errors(404),
    summary="Get one group (normalized, without its members)",
)
async def get_group(svc: Svc, group_id: Id) -> Group:
    async with svc.db.read() as conn:
        return Group.model_validate(await reads.get_group(conn, group_id))


@router.get(
    "/groups/{group_id}/members",
    response_model=MemberPage,
    tags=["groups"],
    responses=errors(400, 404),
    summary="A group's direct members (users and nested groups), cursor-paged",
)
async def group_members(
    svc: Svc,
    group_id: Id,
    limit: Limit = 100,
    after: After = None,
    type: Annotated[
        Literal["user", "group"] | None, Query(description="Only members of this kind.")
    ] = None,
) -> MemberPage:
    async with svc.db.read() as conn:
        page = await reads.group_members_page(
            conn, group_id, member_type=type, limit=limit, cursor=after
        )
    return MemberPage.model_validate({"data": page.items, "next_cursor": page.next_cursor})


# -- events ---------------------------------------------------------------------------------


@router.get(
    "/events",
    response_model=EventPage,
    tags=["events"],
    responses=errors(400),
    summary="The event feed, in commit order",
)
async def list_events(
    svc: Svc,
    after: Annotated[
        str | None,
        Query(
            max_length=100,
            description="The `next_cursor` of the previous page; omitted: from the start.",
        ),
    ] = None,
    limit: Limit = 100,
    directory_id: OptionalId = None,
    organization_id: OptionalId = None,
    type: Annotated[
        list[EventType] | None, Query(description="Only these event types (repeatable).")
    ] = None,
) -> EventPage:
    position = feed.START
    if after is not None:
        position = feed.Cursor.decode(after)
        if max(position.txid, position.seq) > _MAX_FEED_POSITION:
            raise feed.InvalidCursor(f"not a cursor from this feed: {after!r}")
    async with svc.db.read() as conn:
        found, cursor = await feed.read(
            conn,
            after=position,
            limit=limit,
            directory_id=directory_id,
            organization_id=organization_id,
            types=list(type) if type else None,
        )
    return EventPage.model_validate(
        {
            "data": [e.to_json() for e in found],
            "next_cursor": cursor.encode(),
            "has_more": len(found) == limit,
        }
    )
