"""CCI-OS-08 without a host: settings, the collector's CA, and what the control declares.

The rendered rsyslog configuration is checked by rsyslogd itself on the test hosts
(tests/test_central_logging.py: the deploy validates it with ``rsyslogd -N1`` before it lands).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cci_harden.config.materials import PreflightError, load_log_material
from cci_harden.config.settings import load_settings
from cci_harden.controls.central_logging import (
    AUDIT_PLUGIN_FILE,
    CA_FILE,
    CENTRAL_LOGGING,
    CERT_FILE,
    FORWARD_FILE,
    JOURNAL_FORWARD_FILE,
    KEY_FILE,
)
from cci_harden.controls.network import ingress_nft
from cci_harden.fleet.preflight import problems
from cci_harden.model.hostinfo import HostInfo
from cci_harden.model.kinds import ManagedFile, Manifest, Package, Service
from cci_harden.model.kinds.manifest import ManifestEntry
from cci_harden.model.render import rainerscript_string
from cci_harden.testbed.pki import key_pem, make_certificate, pem

from .test_settings import VALID, error_for, write_inventory

CONTAINER = HostInfo(4, 16384, "debian", "12", "bookworm", container="systemd-nspawn")
VM = dataclasses.replace(CONTAINER, container="none")


def _ca(tmp_path, ca: bool = True, days: int = 30, start: dt.datetime | None = None):
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / ("ca.pem" if ca else "leaf.pem")
    path.write_bytes(pem(make_certificate("log CA", key, "log CA", key, days, ca, start)))
    return path


def _client(tmp_path, days: int = 30, start: dt.datetime | None = None) -> str:
    """A client certificate and key (the RELP transport needs them), as settings lines."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    cert = make_certificate("client.internal", key, "log CA", ca_key, days, False, start)
    (tmp_path / "client.pem").write_bytes(pem(cert))
    (tmp_path / "client-key.pem").write_bytes(key_pem(key))
    return (
        f'client_cert_file = "{tmp_path}/client.pem"\nclient_key_file = "{tmp_path}/client-key.pem"'
    )


def _settings(tmp_path, logging: str, network: str = ""):
    toml = VALID.replace("[network]\n", f"[network]\n{network}\n") + f"[logging]\n{logging}\n"
    return load_settings(write_inventory(tmp_path, toml))


def _configured(tmp_path, extra: str = "", network: str = ""):
    lines = f'collector = "10.40.0.9"\nca_file = "{_ca(tmp_path)}"\n{_client(tmp_path)}\n{extra}'
    return _settings(tmp_path, lines, network)


def _by_path(resources) -> dict[str, ManagedFile]:
    return {r.path: r for r in resources if isinstance(r, ManagedFile)}


def test_forwarding_is_tls_only(tmp_path):
    settings = load_settings(write_inventory(tmp_path, VALID + '[logging]\ncollector = "l.in"\n'))
    assert "logging.ca_file: required with logging.collector: logs are only ever sent over TLS" + (
        " to a collector whose certificate is checked"
    ) in problems(settings)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("collector", 'logs.internal" port="1'),
        ("collector", "logs internal"),
        ("collector", "l\u00f6gs.internal"),
        ("collector_name", "a\nb"),
        ("collector_name", "logs.internal`echo x`"),
    ],
)
def test_a_value_that_could_change_the_rsyslog_configuration_is_refused(tmp_path, field, value):
    fields = {"collector": "logs.internal", "ca_file": "ca.pem", field: value}
    body = "".join(f"{key} = {json.dumps(item)}\n" for key, item in fields.items())
    assert f"logging.{field}: " in error_for(tmp_path, VALID + "[logging]\n" + body)


def test_rsyslog_strings_are_escaped_and_control_characters_never_rendered():
    assert rainerscript_string('a"b\\c') == '"a\\"b\\\\c"'
    for bad in ("a\nb", "a\x00", "caf\u00e9"):
        with pytest.raises(ValueError, match="printable ASCII"):
            rainerscript_string(bad)


def test_a_named_collector_is_refused_when_egress_is_restricted(tmp_path):
    toml = VALID.replace("[network]\n", "[network]\nrestrict_egress = true\n")
    toml += '[logging]\ncollector = "logs.internal"\nca_file = "ca.pem"\n'
    error = error_for(tmp_path, toml)
    assert "logging.collector logs.internal" in error and "IP address" in error


def test_the_collector_address_is_let_out_when_egress_is_restricted(tmp_path):
    settings = _configured(tmp_path, "port = 10514", network="restrict_egress = true")
    text = ingress_nft(settings, CONTAINER)
    assert "elements = { 10.40.0.9/32 }" in text
    assert 'tcp dport 10514 ip daddr @log_collector_v4 accept comment "central logging' in text


def test_relp_declares_the_whole_path_to_the_collector(tmp_path):
    settings = _configured(tmp_path, 'collector_name = "logs.internal"\nqueue_max_mb = 256')
    resources = CENTRAL_LOGGING.resources(settings, VM)
    files = _by_path(resources)
    forward = files[FORWARD_FILE]
    assert forward.validate == "rsyslogd -N1 -f {path}" and forward.reload == ("rsyslog",)
    for line in (
        'type="omrelp"',
        'target="10.40.0.9"',
        'port="2514"',
        'tls.permittedPeer=["logs.internal"]',
        f'tls.caCert="{CA_FILE}"',
        f'tls.myCert="{CERT_FILE}"',
        f'tls.myPrivKey="{KEY_FILE}"',
        'tls.authMode="name"',
        'queue.maxDiskSpace="256m"',
        'queue.saveOnShutdown="on"',
        'action.resumeRetryCount="-1"',
    ):
        assert line in forward.content, line
    assert files[CA_FILE].content == (tmp_path / "ca.pem").read_text()
    key = files[KEY_FILE]
    assert (key.mode, key.secret) == (0o600, True)
    assert key.content == (tmp_path / "client-key.pem").read_text()
    assert "ForwardToSyslog=yes" in files[JOURNAL_FORWARD_FILE].content
    assert "active = yes" in files[AUDIT_PLUGIN_FILE].content
    assert files[AUDIT_PLUGIN_FILE].reload == ("auditd",)
    assert {p.name for p in resources if isinstance(p, Package)} == {"rsyslog", "rsyslog-relp"}
    assert any(isinstance(r, Service) and r.unit == "rsyslog" for r in resources)
    # auditd cannot run in a container: no plugin there (CCI-OS-06 says the same)
    assert AUDIT_PLUGIN_FILE not in _by_path(CENTRAL_LOGGING.resources(settings, CONTAINER))


def test_syslog_over_tls_for_collectors_without_relp(tmp_path):
    ca = _ca(tmp_path)
    settings = _settings(
        tmp_path, f'collector = "logs.internal"\nca_file = "{ca}"\ntransport = "syslog-tls"'
    )
    resources = CENTRAL_LOGGING.resources(settings, VM)
    forward = _by_path(resources)[FORWARD_FILE]
    for line in (
        'type="omfwd"',
        'port="6514"',
        'streamDriverPermittedPeers="logs.internal"',  # the collector's name by default
        'streamDriverAuthMode="x509/name"',
        'resendLastMSGOnReconnect="on"',
    ):
        assert line in forward.content, line
    assert "streamDriver.CertFile" not in forward.content  # no client certificate given
    assert KEY_FILE not in _by_path(resources)
    assert {p.name for p in resources if isinstance(p, Package)} == {"rsyslog", "rsyslog-gnutls"}


def test_relp_without_a_client_certificate_is_refused(tmp_path):
    settings = _settings(tmp_path, f'collector = "10.40.0.9"\nca_file = "{_ca(tmp_path)}"')
    assert any(
        line.startswith("logging.client_cert_file: required for transport 'relp'")
        for line in problems(settings)
    )


def test_without_a_collector_the_control_does_not_apply(tmp_path):
    """Its files and packages are then removed by the lifecycle (CCI-TK-01), which restarts
    rsyslog afterwards if it stays installed."""
    settings = load_settings(write_inventory(tmp_path, VALID))
    assert not CENTRAL_LOGGING.applies(settings)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: _ca(p, ca=False), "logging.ca_file: not a CA certificate"),
        (
            lambda p: _ca(p, days=1, start=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)),
            "logging.ca_file: not valid now",
        ),
        (
            lambda p: (p / "ca.pem").write_text("junk") and p / "ca.pem",
            "logging.ca_file: not a PEM certificate",
        ),
        (lambda p: p / "missing.pem", "logging.ca_file: cannot read"),
    ],
)
def test_an_unfit_collector_ca_is_refused_before_any_host(tmp_path, make, expected):
    path = make(tmp_path)
    settings = _settings(tmp_path, f'collector = "10.40.0.9"\nca_file = "{path}"')
    with pytest.raises(PreflightError, match=expected):
        load_log_material(settings)
    assert any(line.startswith(expected) for line in problems(settings))


def test_an_unfit_client_certificate_is_refused_before_any_host(tmp_path):
    settings = _configured(tmp_path)
    (tmp_path / "client-key.pem").write_bytes(key_pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(PreflightError, match="client_key_file: the private key does not match"):
        load_log_material(settings)
    _client(tmp_path, days=1, start=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(PreflightError, match="logging.client_cert_file: not valid now"):
        load_log_material(settings)


def test_the_lifecycle_remembers_which_units_read_a_removed_file():
    """The manifest keeps a file's units, so the deploy that removes the file restarts them; a
    unit name tampered with on the host is dropped, never run."""
    path = "/var/lib/cci-harden/managed/nomad.json"
    entry = ManifestEntry("file", FORWARD_FILE, "CCI-OS-08", ("rsyslog",))
    manifest = Manifest(path, (entry, ManifestEntry("package", "rsyslog", "CCI-OS-08")))
    (state,) = Manifest.parse(f"@@{path}\n{manifest.content()}", [manifest]).values()
    assert entry in state[0]
    stale = {e.key: e.reload for e in Manifest(path).stale(state)}
    assert stale == {FORWARD_FILE: ("rsyslog",), "rsyslog": ()}
    tampered = manifest.content().replace('"rsyslog"\n', '"rsyslog; reboot"\n', 1)
    assert "rsyslog; reboot" in tampered
    (state,) = Manifest.parse(f"@@{path}\n{tampered}", [manifest]).values()
    assert all(e.reload == () for e in state[0])
