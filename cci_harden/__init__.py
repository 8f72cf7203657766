"""cci-harden: install, harden and verify CircleCI Server Nomad clients."""

__version__ = "0.1.0"
