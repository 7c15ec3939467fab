"""Access to the hosts: the one ssh_config, bastion sessions, SSH certificates."""
