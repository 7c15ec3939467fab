"""The Pulumi program: components, dynamic providers, network and DC planning, the lab."""
