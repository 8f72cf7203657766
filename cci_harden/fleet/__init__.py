"""The fleet: inventories, the ssh_config verify writes, preflight checks, onboarding."""
