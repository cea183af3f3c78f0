"""The admin HTTP API (`/admin/v1`, FastAPI): customers, keys, upstream keys, audit log.

The gateway builds it in its lifespan with `admin_app(settings, store)` and hands it every
path `is_admin_path` accepts; see `nxs.admin.api.app`.
"""

from nxs.admin.api.app import AdminApi, admin_app, is_admin_path

__all__ = ["AdminApi", "admin_app", "is_admin_path"]
