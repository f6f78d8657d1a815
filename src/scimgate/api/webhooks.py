"""Webhook endpoints and their deliveries, over ``scimgate.events.webhooks.Webhooks``.

Only registered when the app is given a webhooks service. Signing secrets appear in the
create and rotate-secret responses only; listings never carry them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from scimgate.api.deps import Services, Svc, errors
from scimgate.api.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookDeliveryList,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointList,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
    WebhookSecret,
)
from scimgate.events.webhooks import WebhookEndpoint as WebhookEndpointRecord
from scimgate.events.webhooks import Webhooks

router = APIRouter(tags=["webhooks"])

Id = Annotated[str, Path(min_length=1, max_length=255)]


def _public(endpoint: WebhookEndpointRecord) -> dict[str, Any]:
    doc = endpoint.to_json()
    doc.pop("secret", None)  # never in a listing, even if the record grows one
    return doc


def _service(svc: Services) -> Webhooks:
    webhooks = svc.webhooks
    assert webhooks is not None, "webhook routes are only mounted with a webhooks service"
    return webhooks


@router.get(
    "/webhook-endpoints",
    response_model=WebhookEndpointList,
    responses=errors(),
    summary="List webhook endpoints",
)
async def list_endpoints(
    svc: Svc,
    organization_id: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
    directory_id: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
) -> WebhookEndpointList:
    found = await _service(svc).list_endpoints(
        organization_id=organization_id, directory_id=directory_id
    )
    return WebhookEndpointList.model_validate({"data": [_public(e) for e in found]})


@router.post(
    "/webhook-endpoints",
    response_model=WebhookEndpointWithSecret,
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 404),
    summary="Create a webhook endpoint (returns its signing secret, once)",
)
async def create_endpoint(svc: Svc, body: WebhookEndpointCreate) -> WebhookEndpointWithSecret:
    endpoint, secret = await _service(svc).create_endpoint(
        body.organization_id,
        body.url,
        directory_id=body.directory_id,
        event_types=list(body.event_types) if body.event_types is not None else None,
        description=body.description,
        secret=body.secret,
    )
    return WebhookEndpointWithSecret.model_validate({**_public(endpoint), "secret": secret})


@router.get(
    "/webhook-endpoints/{endpoint_id}",
    response_model=WebhookEndpoint,
    responses=errors(404),
    summary="Get a webhook endpoint",
)
async def get_endpoint(svc: Svc, endpoint_id: Id) -> WebhookEndpoint:
    return WebhookEndpoint.model_validate(_public(await _service(svc).get_endpoint(endpoint_id)))


@router.patch(
    "/webhook-endpoints/{endpoint_id}",
    response_model=WebhookEndpoint,
    responses=errors(400, 404),
    summary="Change a webhook endpoint's URL, event types, description or enabled flag",
)
async def update_endpoint(
    svc: Svc, endpoint_id: Id, body: WebhookEndpointUpdate
) -> WebhookEndpoint:
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    if "event_types" in changes and changes["event_types"] is not None:
        changes["event_types"] = list(changes["event_types"])
    endpoint = await _service(svc).update_endpoint(endpoint_id, **changes)
    return WebhookEndpoint.model_validate(_public(endpoint))


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(404),
    summary="Delete a webhook endpoint and its delivery history",
)
async def delete_endpoint(svc: Svc, endpoint_id: Id) -> Response:
    await _service(svc).delete_endpoint(endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/webhook-endpoints/{endpoint_id}/rotate-secret",
    response_model=WebhookSecret,
    responses=errors(404),
    summary="Issue a new signing secret (returned once)",
)
async def rotate_secret(svc: Svc, endpoint_id: Id) -> WebhookSecret:
    return WebhookSecret(secret=await _service(svc).rotate_secret(endpoint_id))


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries",
    response_model=WebhookDeliveryList,
    responses=errors(400, 404),
    summary="An endpoint's deliveries, newest first",
)
async def list_deliveries(
    svc: Svc,
    endpoint_id: Id,
    status_: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[
        str | None,
        Query(min_length=1, max_length=255, description="The `next_cursor` of the last page."),
    ] = None,
) -> WebhookDeliveryList:
    found = await _service(svc).list_deliveries(
        endpoint_id, status=status_, limit=limit, before=before
    )
    return WebhookDeliveryList.model_validate(
        {
            "data": [d.to_json() for d in found],
            "next_cursor": found[-1].id if len(found) == limit else None,
        }
    )


@router.post(
    "/webhook-endpoints/{endpoint_id}/test",
    response_model=WebhookDelivery,
    status_code=status.HTTP_202_ACCEPTED,
    responses=errors(404),
    summary="Queue a test event to this endpoint",
)
async def send_test_event(svc: Svc, endpoint_id: Id) -> WebhookDelivery:
    return WebhookDelivery.model_validate(
        (await _service(svc).send_test_event(endpoint_id)).to_json()
    )


@router.post(
    "/webhook-deliveries/{delivery_id}/replay",
    response_model=WebhookDelivery,
    status_code=status.HTTP_202_ACCEPTED,
    responses=errors(400, 404),
    summary="Deliver an event again (a new attempt, same event id)",
)
async def replay_delivery(svc: Svc, delivery_id: Id) -> WebhookDelivery:
    return WebhookDelivery.model_validate(
        (await _service(svc).replay_delivery(delivery_id)).to_json()
    )
