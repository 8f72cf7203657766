"""Central logging: each client's logs leave the host as they are written, over TLS.

A Nomad client is short-lived (an autoscaling group replaces it daily), so evidence kept only on
the host is gone with the instance. rsyslog forwards everything it receives: sshd and sudo
(authpriv), the journal (Docker's daemon, Nomad, every unit) and auditd through its audisp-syslog
plugin, to the operator's collector. Job output never reaches syslog: CircleCI's agent streams it
and Docker keeps its json-file driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config.materials import load_log_material
from ..model.control import Control, Source
from ..model.kinds import Directory, ManagedFile, Package, Service
from ..model.render import render
from .sources import circleci_page

if TYPE_CHECKING:
    from ..config.settings import FleetSettings
    from ..model.hostinfo import HostInfo

FORWARD_FILE = "/etc/rsyslog.d/60-cci-harden-forward.conf"
TLS_DIR = "/etc/ssl/cci-harden"
CA_FILE = f"{TLS_DIR}/log-collector-ca.pem"
CERT_FILE = f"{TLS_DIR}/log-client.pem"
KEY_FILE = f"{TLS_DIR}/log-client-key.pem"
SPOOL_DIR = "/var/spool/cci-harden-logs"
JOURNAL_FORWARD_FILE = "/etc/systemd/journald.conf.d/cci-harden-syslog.conf"
AUDIT_PLUGIN_FILE = "/etc/audit/plugins.d/syslog.conf"

# auditd ships the plugin switched off; this is its own file with ``active = yes``.
AUDIT_PLUGIN = (
    "# Managed by cci-harden (CCI-OS-08): auditd's records to rsyslog, and on to the collector\n"
    "active = yes\n"
    "direction = out\n"
    "path = /sbin/audisp-syslog\n"
    "type = always\n"
    "args = LOG_INFO\n"
    "format = string\n"
)


# What each transport needs besides rsyslog itself
TRANSPORT_PACKAGES = {"relp": "rsyslog-relp", "syslog-tls": "rsyslog-gnutls"}


def forward_config(settings, with_certificate: bool) -> str:
    logging = settings.logging
    return render(
        "logging/forward.conf.j2",
        "CCI-OS-08",
        transport=logging.transport,
        collector=logging.collector,
        port=logging.collector_port,
        peer_name=logging.peer_name,
        ca_file=CA_FILE,
        cert_file=CERT_FILE if with_certificate else "",
        key_file=KEY_FILE if with_certificate else "",
        spool=SPOOL_DIR,
        queue_max_mb=logging.queue_max_mb,
    )


def _certificate_files(material) -> list:
    if material.cert_pem is None or material.key_pem is None:
        return []
    return [
        ManagedFile(CERT_FILE, material.cert_pem, reload=("rsyslog",)),
        ManagedFile(
            KEY_FILE,
            material.key_pem.get_secret_value(),
            mode=0o600,
            secret=True,
            reload=("rsyslog",),
        ),
    ]


def _resources(settings: FleetSettings, info: HostInfo):
    material = load_log_material(settings)
    resources = [
        Package("rsyslog"),
        Package(TRANSPORT_PACKAGES[settings.logging.transport], reload=("rsyslog",)),
        Directory(TLS_DIR, 0o755),
        ManagedFile(CA_FILE, material.ca_pem, reload=("rsyslog",)),
        *_certificate_files(material),
        Directory(SPOOL_DIR, 0o700),
        ManagedFile(
            FORWARD_FILE,
            forward_config(settings, material.cert_pem is not None),
            mode=0o640,
            validate="rsyslogd -N1 -f {path}",
            reload=("rsyslog",),
        ),
        ManagedFile(
            JOURNAL_FORWARD_FILE,
            "# Managed by cci-harden (CCI-OS-08): the journal (Docker, Nomad, every unit) "
            "to rsyslog\n[Journal]\nForwardToSyslog=yes\n",
            reload=("systemd-journald",),
        ),
        Service("rsyslog"),
    ]
    if not info.in_container:  # auditd cannot run in a container (CCI-OS-06)
        resources.append(ManagedFile(AUDIT_PLUGIN_FILE, AUDIT_PLUGIN, 0o640, reload=("auditd",)))
    return resources


CENTRAL_LOGGING = Control(
    id="CCI-OS-08",
    nist=("AU-4(1)", "AU-9(2)", "SC-8"),
    title="Logs forwarded to the operator's collector over TLS, queued on disk while it is away",
    sources=(
        circleci_page(
            "incident-hunting",
            "Logs to use",
            "review logs for unauthorized access after an incident",
        ),
        Source(
            "toolkit",
            "Lynis LOGG-2154 (remote logging); short-lived hosts take their logs with them",
        ),
    ),
    rationale="An instance replaced by its autoscaling group takes its logs with it. rsyslog "
    "sends every record (logins, sudo, the journal with Docker and Nomad, auditd through "
    "audisp-syslog) to logging.collector over TLS, accepting only a certificate for the "
    "collector's name from logging.ca_file: by RELP (the default), where the collector "
    "acknowledges each record and none is lost when it restarts, or as RFC 5425 syslog for "
    "collectors without RELP. While the collector is unreachable the records queue in memory "
    "and then on disk (logging.queue_max_mb), saved across an rsyslog restart or a reboot. The "
    "clients' key is root-only (0600) and never shown. The configuration is checked with "
    "`rsyslogd -N1` before it replaces the old one. Unset logging.collector and the next "
    "deploy removes the forwarding (CCI-TK-01), restarting rsyslog if it stays installed.",
    resources=_resources,
    applies=lambda settings: settings.logging.collector is not None,
    circleci_impact="job output never goes through syslog (the agent streams it; Docker's "
    "json-file log driver and its limits are unchanged); local log files stay as they were",
    testbed="container hosts: a login, sudo and Docker's daemon reach an rsyslog collector on "
    "another test host, nothing lost while it is stopped; VM host: an audited change to "
    "/etc/docker reaches it too",
    tags=("baseline", "logging"),
)

CONTROLS = (CENTRAL_LOGGING,)
