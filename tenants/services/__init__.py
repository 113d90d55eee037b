"""Writes of the tenants app, one module per entity: tenants, devices, keys, billing."""
