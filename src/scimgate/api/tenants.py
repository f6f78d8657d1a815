"""Organizations (the host app's customers), their SCIM directories, tokens and rules."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from scimgate.api.deps import After, Limit, Svc, errors
from scimgate.api.models import (
    Directory,
    DirectoryCreate,
    DirectoryPage,
    DirectoryRules,
    DirectoryUpdate,
    DirectoryWithToken,
    Organization,
    OrganizationCreate,
    OrganizationPage,
    OrganizationUpdate,
    Rules,
)
from scimgate.directory import reads
from scimgate.directory import tenancy as tenancy_module
from scimgate.directory.rules import parse_rules
from scimgate.directory.views import directory_view
from scimgate.settings import Settings

router = APIRouter()

Id = Annotated[str, Path(min_length=1, max_length=255)]


def organization_out(org: tenancy_module.Organization) -> Organization:
    return Organization(
        id=org.id,
        name=org.name,
        external_id=org.external_id,
        created_at=org.created_at,
        updated_at=org.updated_at,
    )


def directory_out(settings: Settings, directory: tenancy_module.Directory) -> dict[str, Any]:
    """The directory as the API shows it, with the URLs the IdP admin needs."""
    return directory_view(settings, directory)


# -- organizations --------------------------------------------------------------------------


@router.get(
    "/organizations",
    response_model=OrganizationPage,
    tags=["organizations"],
    responses=errors(400),
    summary="List organizations",
)
async def list_organizations(
    svc: Svc,
    limit: Limit = 100,
    after: After = None,
    external_id: Annotated[str | None, Query(max_length=255)] = None,
) -> OrganizationPage:
    async with svc.db.read() as conn:
        found, next_cursor = await reads.list_organizations(
            conn, external_id=external_id, limit=limit, cursor=after
        )
    return OrganizationPage(data=[organization_out(o) for o in found], next_cursor=next_cursor)


@router.post(
    "/organizations",
    response_model=Organization,
    status_code=status.HTTP_201_CREATED,
    tags=["organizations"],
    responses=errors(400, 409),
    summary="Create an organization",
)
async def create_organization(svc: Svc, body: OrganizationCreate) -> Organization:
    org = await svc.tenancy.create_organization(body.name, body.external_id)
    return organization_out(org)


@router.get(
    "/organizations/by-external-id/{external_id}",
    response_model=Organization,
    tags=["organizations"],
    responses=errors(404),
    summary="Find an organization by the host app's id for it",
)
async def get_organization_by_external_id(svc: Svc, external_id: Id) -> Organization:
    async with svc.db.read() as conn:
        return organization_out(await reads.get_organization_by_external_id(conn, external_id))


@router.get(
    "/organizations/{organization_id}",
    response_model=Organization,
    tags=["organizations"],
    responses=errors(404),
    summary="Get an organization",
)
async def get_organization(svc: Svc, organization_id: Id) -> Organization:
    async with svc.db.read() as conn:
        return organization_out(await reads.get_organization(conn, organization_id))


@router.patch(
    "/organizations/{organization_id}",
    response_model=Organization,
    tags=["organizations"],
    responses=errors(400, 404, 409),
    summary="Rename an organization or change its external id",
)
async def update_organization(
    svc: Svc, organization_id: Id, body: OrganizationUpdate
) -> Organization:
    external_id: str | None = None
    if "external_id" in body.model_fields_set:
        external_id = body.external_id or ""  # Tenancy takes "" as "clear it"
    org = await svc.tenancy.update_organization(
        organization_id, name=body.name, external_id=external_id
    )
    return organization_out(org)


@router.delete(
    "/organizations/{organization_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    tags=["organizations"],
    responses=errors(404),
    summary="Delete an organization with its directories and their data",
)
async def delete_organization(svc: Svc, organization_id: Id) -> Response:
    await svc.tenancy.delete_organization(organization_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- directories ----------------------------------------------------------------------------


@router.get(
    "/directories",
    response_model=DirectoryPage,
    tags=["directories"],
    responses=errors(400),
    summary="List directories",
)
async def list_directories(
    svc: Svc,
    limit: Limit = 100,
    after: After = None,
    organization_id: Annotated[str | None, Query(max_length=255)] = None,
) -> DirectoryPage:
    async with svc.db.read() as conn:
        found, next_cursor = await reads.list_directories(
            conn, organization_id=organization_id, limit=limit, cursor=after
        )
    return DirectoryPage.model_validate(
        {"data": [directory_out(svc.settings, d) for d in found], "next_cursor": next_cursor}
    )


@router.post(
    "/directories",
    response_model=DirectoryWithToken,
    status_code=status.HTTP_201_CREATED,
    tags=["directories"],
    responses=errors(400, 404),
    summary="Create a directory (returns its SCIM token, once)",
)
async def create_directory(svc: Svc, body: DirectoryCreate) -> DirectoryWithToken:
    async with svc.db.read() as conn:
        org = await reads.get_organization(conn, body.organization_id)
    directory, token = await svc.tenancy.create_directory(org.id, body.name, body.provider)
    return DirectoryWithToken.model_validate(
        {**directory_out(svc.settings, directory), "token": token}
    )


@router.get(
    "/directories/{directory_id}",
    response_model=Directory,
    tags=["directories"],
    responses=errors(404),
    summary="Get a directory",
)
async def get_directory(svc: Svc, directory_id: Id) -> Directory:
    directory = await svc.tenancy.get_directory(directory_id)
    return Directory.model_validate(directory_out(svc.settings, directory))


@router.patch(
    "/directories/{directory_id}",
    response_model=Directory,
    tags=["directories"],
    responses=errors(400, 404),
    summary="Rename, disable or enable a directory",
)
async def update_directory(svc: Svc, directory_id: Id, body: DirectoryUpdate) -> Directory:
    directory = await svc.tenancy.update_directory(
        directory_id, name=body.name, enabled=body.enabled
    )
    return Directory.model_validate(directory_out(svc.settings, directory))


@router.post(
    "/organizations/{organization_id}/disable",
    response_model=list[Directory],
    tags=["organizations"],
    responses=errors(404),
    summary="Disable every directory of an organization (tokens stop working; data kept)",
)
async def disable_organization(svc: Svc, organization_id: Id) -> list[Directory]:
    found = await svc.tenancy.set_organization_enabled(organization_id, False)
    return [Directory.model_validate(directory_out(svc.settings, d)) for d in found]


@router.post(
    "/organizations/{organization_id}/enable",
    response_model=list[Directory],
    tags=["organizations"],
    responses=errors(404),
    summary="Enable every directory of an organization again",
)
async def enable_organization(svc: Svc, organization_id: Id) -> list[Directory]:
    found = await svc.tenancy.set_organization_enabled(organization_id, True)
    return [Directory.model_validate(directory_out(svc.settings, d)) for d in found]


@router.post(
    "/directories/{directory_id}/disable",
    response_model=Directory,
    tags=["directories"],
    responses=errors(404),
    summary="Disable a directory (its token stops working; data is kept)",
)
async def disable_directory(svc: Svc, directory_id: Id) -> Directory:
    directory = await svc.tenancy.set_enabled(directory_id, False)
    return Directory.model_validate(directory_out(svc.settings, directory))


@router.post(
    "/directories/{directory_id}/enable",
    response_model=Directory,
    tags=["directories"],
    responses=errors(404),
    summary="Enable a directory again",
)
async def enable_directory(svc: Svc, directory_id: Id) -> Directory:
    directory = await svc.tenancy.set_enabled(directory_id, True)
    return Directory.model_validate(directory_out(svc.settings, directory))


@router.delete(
    "/directories/{directory_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    tags=["directories"],
    responses=errors(404),
    summary="Delete a directory with its users, groups and memberships",
)
async def delete_directory(svc: Svc, directory_id: Id) -> Response:
    await svc.tenancy.delete_directory(directory_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/directories/{directory_id}/rotate-token",
    response_model=DirectoryWithToken,
    tags=["directories"],
    responses=errors(404),
    summary="Issue a new SCIM token (returned once; the old one stops working)",
)
async def rotate_token(svc: Svc, directory_id: Id) -> DirectoryWithToken:
    directory, token = await svc.tenancy.rotate_token(directory_id)
    return DirectoryWithToken.model_validate(
        {**directory_out(svc.settings, directory), "token": token}
    )


@router.get(
    "/directories/{directory_id}/rules",
    response_model=Rules,
    tags=["directories"],
    responses=errors(404),
    summary="Get a directory's acceptance rules (empty when none are set)",
)
async def get_rules(svc: Svc, directory_id: Id) -> Rules:
    directory = await svc.tenancy.get_directory(directory_id)
    return Rules.model_validate(parse_rules(directory.rules).to_json())


@router.put(
    "/directories/{directory_id}/rules",
    response_model=Rules,
    tags=["directories"],
    responses=errors(400, 404),
    summary="Replace a directory's acceptance rules",
)
async def put_rules(svc: Svc, directory_id: Id, body: DirectoryRules) -> Rules:
    directory = await svc.tenancy.set_rules(directory_id, body.model_dump())
    return Rules.model_validate(parse_rules(directory.rules).to_json())


@router.delete(
    "/directories/{directory_id}/rules",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    tags=["directories"],
    responses=errors(404),
    summary="Remove all of a directory's acceptance rules",
)
async def delete_rules(svc: Svc, directory_id: Id) -> Response:
    await svc.tenancy.set_rules(directory_id, None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
