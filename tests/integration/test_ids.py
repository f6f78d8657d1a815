"""Users, groups and their events get time-ordered (version 7) ids; the ids of the
organization and directory in a Tenant URL stay random (version 4)."""

from __future__ import annotations

import uuid

from scimgate.events.outbox import new_event
from tests.integration.helpers import create_group, create_user
from tests.live import Directory


def test_users_and_groups_get_version_7_ids(directory: Directory) -> None:
    user = create_user(directory)
    group = create_group(directory)
    assert uuid.UUID(user["id"]).version == 7
    assert uuid.UUID(group["id"]).version == 7
    assert uuid.UUID(directory.id).version == 4


def test_event_ids_are_version_7() -> None:
    event = new_event("user.created", "d", "o", {}, None)
    assert event.id.startswith("evt_")
    assert uuid.UUID(event.id.removeprefix("evt_")).version == 7
