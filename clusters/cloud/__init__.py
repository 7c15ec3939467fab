"""The cluster department apps run on: its plan, certificates, hosts and add-ons."""
