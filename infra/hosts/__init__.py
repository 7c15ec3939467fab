"""Host configuration: running playbooks (one ansible-runner wrapper) against the inventory."""
