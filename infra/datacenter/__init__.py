"""datacenter."""
