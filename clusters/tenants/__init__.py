"""One Kubernetes tenant per department: its objects, applying them, its credentials."""

DEFAULT_CONCURRENCY = 16  # requests in flight at once when applying or diffing tenants
