"""scimgate: a multi-tenant SCIM 2.0 provisioning server."""

from scimgate.app import create_app
from scimgate.settings import Settings

__version__ = "0.1.0"
__all__ = ["Settings", "__version__", "create_app"]
