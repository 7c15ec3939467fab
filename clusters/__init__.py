"""Multi-tenant Kubernetes: tenant objects, app deploy, per-environment cluster config, apps."""
