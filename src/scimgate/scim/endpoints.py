"""The SCIM resource endpoints: /Users and /Groups, list/search/CRUD/PATCH.

Each handler authenticates, parses (``payloads``/``patch``/``params``), runs one database
transaction through the ``directory`` repositories and renders (``render``). Writes hold
the resource's row lock from read to write, so concurrent PATCHes never lose an update.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from sqlalchemy import ColumnElement
from starlette.requests import Request
from starlette.responses import Response

from scimgate.directory import groups as group_repo
from scimgate.directory import rules
from scimgate.directory import users as user_repo
from scimgate.directory.records import Page, ResourceRecord, Where
from scimgate.directory.tenancy import DirectoryAccess, Tenancy
from scimgate.directory.unit import Declined, Unit, run_unit
from scimgate.errors import Unauthorized
from scimgate.events.bus import EventBus
from scimgate.scim.errors import ScimError, not_found
from scimgate.scim.filter_sql import column_match, compile_filter, sort_expression
from scimgate.scim.http import (
    check_if_match,
    not_modified,
    parse_json,
    read_body,
    read_json,
    scim_response,
)
from scimgate.scim.params import ListParams, list_params, search_body, selection_params
from scimgate.scim.patch import (
    GroupPatchPlan,
    apply_user_patch,
    member_patch_actions,
    plan_group_patch,
)
from scimgate.scim.payloads import parse_group, parse_user
from scimgate.scim.render import (
    ENDPOINTS,
    LIST_SCHEMA,
    groups_value,
    project,
    resource,
    selects_within,
    wants,
)
from scimgate.settings import Settings
from scimgate.store.connections import Conn
from scimgate.store.engine import Database, replayable
from scimgate.store.jsoncodec import loads
from scimgate.store.precondition import AssumptionFailed, Precondition

_UNKNOWN = object()
"""Marks a root-search filter that names an attribute the resource type lacks."""


class Caller:
    """A request's directory and that directory's base URL, with the authentication
    that opened it. On PostgreSQL the authentication rides with the request's first read
    (see :mod:`scimgate.store.precondition`): ``directory`` is usable once that read ran,
    or after ``await checked()``. A write may instead assume the directory the token
    opened on an earlier request, which the database confirms before COMMIT."""

    __slots__ = ("_access", "_conn", "directory_id", "scim_base")

    def __init__(
        self, directory_id: str, scim_base: str, access: Precondition[DirectoryAccess], conn: Conn
    ) -> None:
        self.directory_id = directory_id
        self.scim_base = scim_base
        self._access = access
        self._conn = conn

    @property
    def directory(self) -> DirectoryAccess:
        return self._access.value

    @property
    def decided(self) -> bool:
        return self._access.decided

    @property
    def assumed(self) -> bool:
        """Whether the directory is an assumption not yet confirmed by the database."""
        return self._access.known and not self._access.decided

    async def checked(self) -> DirectoryAccess:
        """The directory, once the authentication has passed (sent now if still waiting)."""
        if not self._access.decided:
            await self._conn.resolve()
        return self._access.value

    async def known(self) -> DirectoryAccess:
        """The directory: checked, or assumed from an earlier request (a write commits only
        if the assumption holds), or checked now."""
        if not self._access.known:
            await self._conn.resolve()
        return self._access.value


async def _enforce_rules(
    caller: Caller, doc: dict[str, Any], before: dict[str, Any] | None = None
) -> None:
    """The host app's acceptance rules (directory.rules); InvalidInput becomes a 400."""
    directory = await caller.known()
    if directory.rules:
        rules.check(rules.parse_rules(directory.rules), doc, before)


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return ""
    return token.strip()


def _unauthorized() -> ScimError:
    return ScimError(
        401,
        "missing or invalid bearer token for this SCIM directory: paste the Secret "
        "Token issued for this Tenant URL (a rotated token stops working at once)",
        headers={"WWW-Authenticate": 'Bearer realm="scimgate"'},
    )


def _no_such(noun: str, resource_id: str) -> ScimError:
    return not_found(f"no {noun} with id {resource_id!r} in this directory")


def _path_id(request: Request, noun: str) -> str:
    """The resource id in the URL. One with NUL names nothing (PostgreSQL text cannot hold
    NUL, so no id has one): 404 before any statement, which would fail in the driver. The
    caller's token is still checked first (see :meth:`ScimEndpoints._authenticated`)."""
    resource_id: str = request.path_params["id"]
    if "\x00" in resource_id:
        raise _no_such(noun, resource_id)
    return resource_id


class ScimEndpoints:
    """Request handlers bound to one database and one configuration."""

    def __init__(
        self, db: Database, settings: Settings, tenancy: Tenancy, bus: EventBus | None = None
    ) -> None:
        self.db = db
        self.settings = settings
        self.tenancy = tenancy
        self.bus = bus

    # -- units of work, authenticated -------------------------------------------------

    async def _read(
        self, request: Request, work: Callable[[Conn, Caller], Awaitable[Response]]
    ) -> Response:
        """``work`` on a read connection, the request authenticated on it."""
        callers: list[Caller] = []

        async def once() -> Response:
            async with self.db.read() as conn:
                caller = await self._caller(request, conn)
                callers.append(caller)
                response = await work(conn, caller)
                await caller.checked()
                return response

        async def run() -> Response:
            try:
                return await once()
            except Exception as exc:
                if not replayable(exc):
                    raise
                return await once()  # e.g. prepared statements lost to a pooler: now off

        return await self._authenticated(request, callers, run)

    async def _write(
        self, request: Request, work: Callable[[Unit, Caller], Awaitable[Response]]
    ) -> Response:
        """One write transaction for the caller's directory, events included. The request
        is authenticated inside it (read the body before: never hold a transaction open
        while a client sends)."""
        callers: list[Caller] = []

        async def unit(*, assume: bool) -> Response:
            async def open_unit(conn: Conn) -> Unit:
                caller = await self._caller(request, conn, assume=assume)
                callers.append(caller)
                return Unit(conn, caller.directory_id, lambda: caller.directory)

            response = await run_unit(self.db, self.bus, open_unit, lambda u: work(u, callers[-1]))
            if not callers[-1].decided:  # the connection checks before COMMIT
                raise RuntimeError("a write committed before its authentication was checked")
            return response

        async def run() -> Response:
            try:
                return await unit(assume=True)
            except Declined:
                # A one-round-trip form left the change to the ordinary one: nothing was
                # changed (a member that is a group, an unknown id: answered there).
                return await unit(assume=False)
            except AssumptionFailed:
                # The token, the directory or its owner changed since this process last
                # saw them: nothing was committed; authenticate the ordinary way.
                self.tenancy.forget(request.path_params["directory_id"])
                return await unit(assume=False)
            except Exception:
                if not (callers and callers[-1].assumed):
                    raise
                # Failed before the database confirmed the assumption: the error may come
                # from what was assumed (the rules, say). Nothing was committed (a commit
                # confirms it): answer as if nothing had been remembered.
                return await unit(assume=False)

        return await self._authenticated(request, callers, run)

    async def _authenticated(
        self, request: Request, callers: list[Caller], run: Callable[[], Awaitable[Response]]
    ) -> Response:
        """Run a unit that authenticates its caller as it goes. A wrong token answers 401
        whatever else is wrong with the request, as if it had been checked first: an
        error raised before the authentication was answered (a malformed filter, a
        failed statement) makes us check the token on its own."""
        try:
            return await run()
        except Unauthorized as exc:
            raise _unauthorized() from exc
        except Exception:
            if callers and not callers[-1].decided:
                directory_id = request.path_params["directory_id"]
                if await self.tenancy.authenticate(directory_id, _bearer(request)) is None:
                    raise _unauthorized() from None
            raise

    async def _caller(self, request: Request, conn: Conn, *, assume: bool = False) -> Caller:
        """The request's caller, authenticated on ``conn`` (with ``assume``: a write may
        take the directory this token opened on an earlier request, confirmed by the
        database before COMMIT; see :meth:`Tenancy.assume_access`)."""
        directory_id = request.path_params["directory_id"]
        token = _bearer(request)
        access = None
        if assume:
            access = await self.tenancy.assume_access(conn, directory_id, token)
        if access is None:
            access = await self.tenancy.authenticate_first(conn, directory_id, token)
        return Caller(directory_id, self.settings.scim_base_url(directory_id), access, conn)

    async def authenticated_base(self, request: Request) -> str:
        """The directory's SCIM base URL, once the request's token opens it (for the
        discovery endpoints, which read nothing else)."""
        directory_id = request.path_params["directory_id"]
        if await self.tenancy.authenticate(directory_id, _bearer(request)) is None:
            raise _unauthorized()
        return self.settings.scim_base_url(directory_id)

    # -- shared helpers ---------------------------------------------------------------

    def _list_params(self, source: dict[str, Any], resource_type: str) -> ListParams:
        return list_params(
            source,
            resource_type,
            default_count=self.settings.default_page_size,
            max_count=self.settings.max_page_size,
        )

    def _where(self, params: ListParams, resource_type: str) -> Where:
        if params.filter is None:
            return None
        match = column_match(params.filter, resource_type)  # type: ignore[arg-type]
        if match is not None:
            return match
        return compile_filter(params.filter, resource_type, self.db.dialect)  # type: ignore[arg-type]

    def _order(self, params: ListParams, resource_type: str) -> list[ColumnElement[Any]]:
        if params.sort_by is None:
            return []
        expr = sort_expression(params.sort_by, resource_type, self.db.dialect)  # type: ignore[arg-type]
        # RFC 7644 §3.4.2.3: resources without the attribute sort last when ascending,
        # first when descending (SQLite and PostgreSQL disagree by default).
        return [expr.desc().nulls_first() if params.descending else expr.asc().nulls_last()]

    @staticmethod
    def _list_response(params: ListParams, page: Page, items: list[dict[str, Any]]) -> Response:
        return scim_response(
            {
                "schemas": [LIST_SCHEMA],
                "totalResults": page.total,
                "startIndex": params.start_index,
                "itemsPerPage": len(items),
                "Resources": items,
            }
        )

    # -- rendering ----------------------------------------------------------------------

    async def _render(
        self,
        conn: Conn,
        caller: Caller,
        resource_type: str,
        records: list[ResourceRecord],
        params: ListParams,
        *,
        related_empty: bool = False,
    ) -> list[dict[str, Any]]:
        """Full resources, with a user's ``groups`` or a group's ``members`` loaded only
        when the selection keeps them (a group can have 100k members) and they may exist
        (``related_empty``: a resource created without any)."""
        key = "groups" if resource_type == "User" else "members"
        related: dict[str, list[dict[str, Any]] | orjson.Fragment] = {}
        if records and not related_empty and wants(params.attributes, params.excluded, key):
            ids = [r.id for r in records]
            if all(r.groups is not None for r in records):  # read with the users
                related = {r.id: groups_value(r.groups or [], caller.scim_base) for r in records}
            elif resource_type == "User":
                found_groups = await user_repo.groups_of(conn, ids)
                related = {k: groups_value(v, caller.scim_base) for k, v in found_groups.items()}
            else:
                written = await group_repo.members_json(conn, ids, caller.scim_base)
                if selects_within(params.attributes, params.excluded, key):  # to cut
                    related = {k: loads(v) for k, v in written.items()}
                else:  # passed on as it is: a 100k-member group stays one string
                    related = {k: orjson.Fragment(v) for k, v in written.items()}
        return [
            project(
                resource(
                    record,
                    resource_type,
                    caller.scim_base,
                    {key: related[record.id]} if related.get(record.id) else None,
                ),
                params.attributes,
                params.excluded,
            )
            for record in records
        ]

    async def _single(
        self,
        conn: Conn,
        caller: Caller,
        resource_type: str,
        record: ResourceRecord,
        request: Request,
        status: int = 200,
        *,
        related_empty: bool = False,
    ) -> Response:
        """One resource as the response to a GET or a write, with its ETag."""
        params = selection_params(request.query_params, resource_type)
        [body] = await self._render(
            conn, caller, resource_type, [record], params, related_empty=related_empty
        )
        headers = {"ETag": record.etag}
        if status == 201:
            headers["Location"] = f"{caller.scim_base}/{ENDPOINTS[resource_type]}/{record.id}"
        return scim_response(body, status, headers)

    # -- users --------------------------------------------------------------------------

    async def list_users(self, request: Request) -> Response:
        async def work(conn: Conn, caller: Caller) -> Response:
            params = self._list_params(dict(request.query_params), "User")
            return await self._search(conn, caller, "User", params)

        return await self._read(request, work)

    async def search_users(self, request: Request) -> Response:
        async def work(conn: Conn, caller: Caller) -> Response:
            body = search_body(await read_json(request, self.settings.max_body_bytes))
            return await self._search(conn, caller, "User", self._list_params(body, "User"))

        return await self._read(request, work)

    async def _search(
        self, conn: Conn, caller: Caller, resource_type: str, params: ListParams
    ) -> Response:
        where, order = self._where(params, resource_type), self._order(params, resource_type)
        offset = params.start_index - 1
        if resource_type == "User":
            page = await user_repo.search(
                conn,
                caller.directory_id,
                where,
                order,
                offset,
                params.count,
                groups=wants(params.attributes, params.excluded, "groups"),
            )
        else:
            page = await group_repo.search(
                conn, caller.directory_id, where, order, offset, params.count
            )
        items = await self._render(conn, caller, resource_type, page.records, params)
        return self._list_response(params, page, items)

    async def get_user(self, request: Request) -> Response:
        async def work(conn: Conn, caller: Caller) -> Response:
            record = await self._user(conn, caller, _path_id(request, "user"), shown_by=request)
            if not_modified(request, record.etag):
                return Response(status_code=304, headers={"ETag": record.etag})
            return await self._single(conn, caller, "User", record, request)

        return await self._read(request, work)

    async def _user(
        self,
        conn: Conn,
        caller: Caller,
        user_id: str,
        *,
        for_update: bool = False,
        shown_by: Request | None = None,
    ) -> ResourceRecord:
        """The user; its groups are read in the same statement when the response to
        ``shown_by`` will show them."""
        groups = False
        if shown_by is not None:
            params = selection_params(shown_by.query_params, "User")
            groups = wants(params.attributes, params.excluded, "groups")
        record = await user_repo.get(
            conn, caller.directory_id, user_id, for_update=for_update, groups=groups
        )
        if record is None:
            raise _no_such("user", user_id)
        return record

    async def create_user(self, request: Request) -> Response:
        raw = await read_body(request, self.settings.max_body_bytes)

        async def work(unit: Unit, caller: Caller) -> Response:
            body = parse_json(raw)
            doc = parse_user(body)
            await _enforce_rules(caller, doc)
            conn = unit.conn
            record = await user_repo.insert(unit, doc)
            return await self._single(
                conn, caller, "User", record, request, 201, related_empty=True
            )

        return await self._write(request, work)

    async def replace_user(self, request: Request) -> Response:
        raw = await read_body(request, self.settings.max_body_bytes)

        async def work(unit: Unit, caller: Caller) -> Response:
            body = parse_json(raw)
            doc = parse_user(body)
            conn = unit.conn
            current = await self._user(
                conn, caller, _path_id(request, "user"), for_update=True, shown_by=request
            )
            check_if_match(request, current.etag)
            await _enforce_rules(caller, doc, current.doc)
            record = await user_repo.replace(unit, current, doc)
            return await self._single(conn, caller, "User", record, request)

        return await self._write(request, work)

    async def patch_user(self, request: Request) -> Response:
        raw = await read_body(request, self.settings.max_body_bytes)

        async def work(unit: Unit, caller: Caller) -> Response:
            body = parse_json(raw)
            conn = unit.conn
            current = await self._user(
                conn, caller, _path_id(request, "user"), for_update=True, shown_by=request
            )
            check_if_match(request, current.etag)
            doc = apply_user_patch(current.doc, body, current.id)
            await _enforce_rules(caller, doc, current.doc)
            record = await user_repo.replace(unit, current, doc)
            return await self._single(conn, caller, "User", record, request)

        return await self._write(request, work)

    async def delete_user(self, request: Request) -> Response:
        async def work(unit: Unit, caller: Caller) -> Response:
            conn = unit.conn
            user_id = _path_id(request, "user")
            leaving = group_repo.leave_ahead(unit, user_id, "User")  # rides with the lock
            current = await self._user(conn, caller, user_id, for_update=True)
            check_if_match(request, current.etag)
            await user_repo.delete_user(unit, current, leaving)
            return Response(status_code=204)

        return await self._write(request, work)

    # -- both ---------------------------------------------------------------------------

    async def search_all(self, request: Request) -> Response:
        """``POST {base}/.search`` across Users and Groups (RFC 7644 §3.4.3): users first,
        then groups. An attribute only one type has matches nothing of the other type."""

        async def work(conn: Conn, caller: Caller) -> Response:
            body = search_body(await read_json(request, self.settings.max_body_bytes))
            user_params = self._list_params(body, "User")
            group_params = self._list_params(body, "Group")
            user_where = self._where_or_none(user_params, "User")
            group_where = self._where_or_none(group_params, "Group")
            if user_where is _UNKNOWN and group_where is _UNKNOWN:
                self._where(user_params, "User")  # raises the error naming the attribute
            offset, count = user_params.start_index - 1, user_params.count
            users_page = Page(0, [])
            if user_where is not _UNKNOWN:
                users_page = await user_repo.search(
                    conn,
                    caller.directory_id,
                    user_where,
                    self._order(user_params, "User"),
                    offset,
                    count,
                )
            items = await self._render(conn, caller, "User", users_page.records, user_params)
            groups_page = Page(0, [])
            if group_where is not _UNKNOWN:
                groups_page = await group_repo.search(
                    conn,
                    caller.directory_id,
                    group_where,
                    self._order(group_params, "Group"),
                    max(0, offset - users_page.total),
                    max(0, count - len(items)),
                )
            items += await self._render(conn, caller, "Group", groups_page.records, group_params)
            total = Page(users_page.total + groups_page.total, [])
            return self._list_response(user_params, total, items)

        return await self._read(request, work)

    def _where_or_none(self, params: ListParams, resource_type: str) -> Any:
        try:
            return self._where(params, resource_type)
        except ScimError as exc:
            if exc.scim_type == "invalidFilter" and params.filter is not None:
                return _UNKNOWN
            raise

    # -- groups -------------------------------------------------------------------------

    async def _group(
        self, conn: Conn, caller: Caller, group_id: str, *, for_update: bool = False
    ) -> ResourceRecord:
        record = await group_repo.get(conn, caller.directory_id, group_id, for_update=for_update)
        if record is None:
            raise _no_such("group", group_id)
        return record

    async def list_groups(self, request: Request) -> Response:
        async def work(conn: Conn, caller: Caller) -> Response:
            params = self._list_params(dict(request.query_params), "Group")
            return await self._search(conn, caller, "Group", params)

        return await self._read(request, work)

    async def search_groups(self, request: Request) -> Response:
        async def work(conn: Conn, caller: Caller) -> Response:
            body = search_body(await read_json(request, self.settings.max_body_bytes))
            return await self._search(conn, caller, "Group", self._list_params(body, "Group"))

        return await self._read(request, work)

    async def get_group(self, request: Request) -> Response:
        async def work(conn: Conn, caller: Caller) -> Response:
            record = await self._group(conn, caller, _path_id(request, "group"))
            if not_modified(request, record.etag):
                return Response(status_code=304, headers={"ETag": record.etag})
            return await self._single(conn, caller, "Group", record, request)

        return await self._read(request, work)

    async def create_group(self, request: Request) -> Response:
        raw = await read_body(request, self.settings.max_body_bytes)

        async def work(unit: Unit, caller: Caller) -> Response:
            body = parse_json(raw)
            doc, members = parse_group(body)
            conn = unit.conn
            record = await group_repo.insert(unit, doc)
            if members:
                await group_repo.add_members(unit, record, {m.value: m.display for m in members})
            return await self._single(
                conn, caller, "Group", record, request, 201, related_empty=not members
            )

        return await self._write(request, work)

    async def replace_group(self, request: Request) -> Response:
        raw = await read_body(request, self.settings.max_body_bytes)

        async def work(unit: Unit, caller: Caller) -> Response:
            body = parse_json(raw)
            doc, members = parse_group(body)
            conn = unit.conn
            current = await self._group(conn, caller, _path_id(request, "group"), for_update=True)
            check_if_match(request, current.etag)
            added, removed = await group_repo.replace_members(
                unit, current, {m.value: m.display for m in members or []}
            )
            record = current
            if doc != current.doc or added or removed:
                record = await group_repo.replace(unit, current, doc)
            return await self._single(conn, caller, "Group", record, request)

        return await self._write(request, work)

    async def patch_group(self, request: Request) -> Response:
        raw = await read_body(request, self.settings.max_body_bytes)

        async def work(unit: Unit, caller: Caller) -> Response:
            body = parse_json(raw)
            params = selection_params(request.query_params, "Group")
            conn = unit.conn
            group_id = _path_id(request, "group")
            # What Entra and Okta send changes members only: its first change can then go
            # to the database with the group's row lock (one round trip fewer).
            early = member_patch_actions(body)
            ahead = finish = None
            if early:
                first = early[0]
                if (
                    len(early) == 1
                    and caller.assumed  # the events need the directory's owner now
                    and "if-match" not in request.headers
                    and params.attributes is None
                    and params.excluded is None
                ):
                    # The whole change, with the lock and COMMIT: one round trip.
                    given = {m.value: m.display for m in first.members}
                    finish = group_repo.finish_ahead(unit, group_id, first.kind, given)
                if finish is None:
                    ahead = group_repo.send_ahead(
                        unit, group_id, first.kind, [m.value for m in first.members]
                    )
            current = await self._group(conn, caller, group_id, for_update=True)
            if finish is not None and (after := group_repo.finished(unit, current, finish)):
                return Response(status_code=204, headers={"ETag": after.etag})
            check_if_match(request, current.etag)
            if early is not None:
                plan = GroupPatchPlan(current.doc, early)
            else:
                plan = plan_group_patch(current.doc, body, current.id)
            changed = plan.doc != current.doc
            for index, action in enumerate(plan.member_actions):
                ids = [m.value for m in action.members]
                given = {m.value: m.display for m in action.members}
                sent = ahead if index == 0 else None
                if action.kind == "add":
                    done = await group_repo.add_members(unit, current, given, sent)
                    changed = changed or bool(done)
                elif action.kind == "remove":
                    removed = await group_repo.remove_members(unit, current, ids, sent)
                    changed = bool(removed) or changed
                elif action.kind == "clear":
                    changed = bool(await group_repo.clear_members(unit, current)) or changed
                else:
                    added, removed = await group_repo.replace_members(unit, current, given)
                    changed = changed or bool(added or removed)
            record = current
            if changed:
                record = await group_repo.replace(
                    unit, current, plan.doc if plan.doc != current.doc else None
                )
            if params.attributes is None and params.excluded is None:
                # Groups can have 100k members: do not send them back unasked (RFC 7644
                # §3.5.2 allows 204 No Content when no attributes were requested).
                return Response(status_code=204, headers={"ETag": record.etag})
            return await self._single(conn, caller, "Group", record, request)

        return await self._write(request, work)

    async def delete_group(self, request: Request) -> Response:
        async def work(unit: Unit, caller: Caller) -> Response:
            conn = unit.conn
            group_id = _path_id(request, "group")
            leaving = group_repo.leave_ahead(unit, group_id, "Group")  # rides with the lock
            current = await self._group(conn, caller, group_id, for_update=True)
            check_if_match(request, current.etag)
            await group_repo.delete_group(unit, current, leaving)
            return Response(status_code=204)

        return await self._write(request, work)
