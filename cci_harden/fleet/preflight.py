"""Checks that need the operator's machine but no host: run before any connection is opened.

Settings validation proves each value well-formed; this proves the settings usable together: the
install sources are pinned, the keys and certificates they name exist and fit, and the firewall
will still admit the operator.
"""

from __future__ import annotations

import datetime as dt

from ..config.materials import (
    PreflightError,
    load_host_ca,
    load_log_material,
    load_revoked_host_keys,
    load_signing_key,
    load_tls,
    tls_configured,
)
from ..config.settings import FleetSettings


def warnings(settings: FleetSettings, today: dt.date | None = None) -> list[str]:
    """What deserves the operator's attention but does not stop a deploy, one line each."""
    today = today or dt.datetime.now(dt.UTC).date()
    found = []
    past = settings.server.line.support_warning(today)
    if past:
        found.append(past)
    if settings.nomad.cgroup_version == "v2" and settings.server.line.cgroup_version == "v1":
        found.append(
            "nomad.cgroup_version = v2: CircleCI documents cgroup v2 as unsupported for Nomad "
            "clients with the Docker runtime (Server 4.x installation docs); keep v1 unless "
            "CircleCI told you otherwise"
        )
    return found


def problems(settings: FleetSettings) -> list[str]:
    """Every reason the deploy must not start, one line each (empty when it may)."""
    found: list[str] = []

    def attempt(check) -> None:
        try:
            check()
        except PreflightError as exc:
            found.append(str(exc))

    nomad = settings.nomad
    line = settings.server.line
    if line.mtls_required:
        why = f"required for Server {line.name} (server.version {settings.server.version})"
        if not nomad.servers:
            found.append(f"nomad.servers: {why}: the Nomad servers' RPC addresses, host:port")
        tls = nomad.tls
        for name in ("ca_file", "cert_file"):
            if getattr(tls, name) is None:
                found.append(f"nomad.tls.{name}: {why}: mTLS to the servers is mandatory")
        if tls.key_file is None and tls.key_pem is None:
            found.append(
                f"nomad.tls.key_file (or key_pem): {why}: mTLS to the servers is mandatory"
            )
        if not settings.network.nomad_server_cidrs:
            found.append(
                f"network.nomad_server_cidrs: {why}: the firewall admits Nomad RPC only from them"
            )
    if nomad.release_url is None:
        found.append(
            f"nomad.release_url: required for install_source {nomad.install_source!r} "
            "(the release host, HashiCorp's apt repository, or your mirror)"
        )
    attempt(lambda: load_signing_key("nomad", settings, nomad.gpg_key_file, nomad.gpg_fingerprint))
    docker = settings.docker
    if docker.install_source == "docker-ce":
        for name in ("version", "repo_url"):
            if getattr(docker, name) is None:
                found.append(f"docker.{name}: required for install_source 'docker-ce'")
        attempt(
            lambda: load_signing_key(
                "docker", settings, docker.gpg_key_file, docker.gpg_fingerprint
            )
        )
    if not line.mtls_required or tls_configured(settings):
        attempt(lambda: load_tls(settings))
    attempt(lambda: load_host_ca(settings))
    attempt(lambda: load_revoked_host_keys(settings))
    if settings.logging.collector is not None:
        attempt(lambda: load_log_material(settings))
    if not settings.network.admin_cidrs:
        found.append(
            "network.admin_cidrs: empty; the host firewall admits SSH only from these networks, "
            "so an empty list would lock every operator out"
        )
    return found


def require_ready(settings: FleetSettings, more: list[str] | None = None) -> None:
    """Refuse with every reason at once: ``more`` (the inventory's own) and the settings'."""
    found = [*(more or []), *problems(settings)]
    if found:
        raise PreflightError("not ready to deploy:\n" + "\n".join(f"  {line}" for line in found))
