"""OCI images made from local files and pushed to the cloud's registry (no internet needed)."""
