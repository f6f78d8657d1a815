"""The management API (REST + JSON, API-key auth) for the host app's backend."""

from scimgate.api.app import API_MOUNT, ApiMount, api_mount, create_api

__all__ = ["API_MOUNT", "ApiMount", "api_mount", "create_api"]
