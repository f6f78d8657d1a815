"""What the repositories hand back: one stored resource and its bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ResourceRecord:
    """A stored user or group: its canonical SCIM document plus the meta columns."""

    id: str
    directory_id: str
    doc: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


@dataclass(frozen=True)
class Page:
    """One page of a search: the total count and the records of this page."""

    total: int
    records: list[ResourceRecord]
