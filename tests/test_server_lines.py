"""The Server release line sets documented defaults; what it requires is refused
without, every missing field named at once; an explicit setting always wins."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from pydantic import ValidationError

from cci_harden.config.settings import FleetSettings
from cci_harden.controls.network import egress_rules
from cci_harden.model.hostinfo import STAND_IN

from .conftest import cli_here
from .test_settings import BASE, write_inventory

HOSTLESS = {"network": {"admin_cidrs": ["198.51.100.0/24"]}}


def settings_for(version: str, **sections) -> FleetSettings:
    return FleetSettings.model_validate({**HOSTLESS, "server": {"version": version}, **sections})


@pytest.mark.parametrize(
    ("version", "nomad", "source", "tag"),
    [
        ("3.4", "1.6.3", "release-zip", "circleci-vm-service"),
        ("4.8", "1.7.7", "hashicorp-apt", "circleci-machine-provisioner"),
        ("4.10", "1.7.7", "hashicorp-apt", "circleci-machine-provisioner"),
    ],
)
def test_each_line_brings_its_defaults(version, nomad, source, tag):
    settings = settings_for(version)
    assert (settings.nomad.version, settings.nomad.install_source) == (nomad, source)
    assert settings.aws.managed_by_tag == tag
    assert dict(settings.from_server_line())["nomad.version"] == nomad


def test_an_explicit_value_wins_and_is_not_reported_as_a_default():
    settings = settings_for("4.8", nomad={"version": "1.7.5", "install_source": "mirror"})
    assert (settings.nomad.version, settings.nomad.install_source) == ("1.7.5", "mirror")
    assert "nomad.version" not in dict(settings.from_server_line())


def test_lines_without_a_public_build_need_the_version_named():
    with pytest.raises(ValidationError, match=r"nomad\.version: required for Server 4\.0-4\.7"):
        settings_for("4.5")
    assert settings_for("4.5", nomad={"version": "1.4.14"}).nomad.version == "1.4.14"


def test_a_client_newer_than_its_servers_is_refused():
    with pytest.raises(ValidationError, match="must not be newer than their servers"):
        settings_for("4.8", nomad={"server_version": "1.7.6"})
    assert settings_for("4.8", nomad={"server_version": "1.11.1"}).nomad.version == "1.7.7"


def test_4_10_is_the_default_line_with_its_servers_and_dates():
    settings = FleetSettings.model_validate(HOSTLESS)
    line = settings.server.line
    assert (settings.server.version, line.name) == ("4.10", "4.10")
    assert (settings.nomad.version, settings.nomad.server_version) == ("1.7.7", "1.11.3")
    assert settings.nomad.cgroup_version == "v1"
    assert (str(line.released), str(line.support_ends)) == ("2026-05-13", "2027-05-13")
    nine = settings_for("4.9").server.line
    assert (str(nine.released), str(nine.support_ends)) == ("2025-12-09", "2026-12-09")


def test_a_line_past_its_support_is_a_warning_not_a_refusal():
    from cci_harden.fleet.preflight import warnings

    old = settings_for("4.8")
    (warning,) = warnings(old, dt.date(2026, 12, 3))
    assert "4.8 went out of support on 2026-07-24" in warning and "4.10" in warning
    assert warnings(settings_for("4.9"), dt.date(2026, 12, 3)) == []
    assert "went out of support" in warnings(settings_for("4.9"), dt.date(2026, 12, 10))[0]
    assert warnings(settings_for("4.10"), dt.date(2026, 12, 3)) == []
    v2 = settings_for("4.10", nomad={"cgroup_version": "v2"})
    assert "unsupported" in warnings(v2, dt.date(2026, 12, 3))[0]


def test_config_check_warns_of_a_line_past_support_and_still_passes_settings(tmp_path):
    inventory = write_inventory(tmp_path, BASE + '[server]\nversion = "4.8"\n')
    proc = cli_here("config", "check", str(inventory))
    assert "warning: CircleCI Server 4.8 went out of support on 2026-07-24" in proc.stderr
    assert "settings valid" in proc.stderr


def test_a_line_newer_than_the_toolkit_knows_is_refused():
    with pytest.raises(ValidationError, match=r"server\.version[\s\S]*newest: 4\.10"):
        settings_for("4.11")


@pytest.mark.parametrize("version", ["5.0", "4", "4.8.1", "v4.8", "4.8\n", "４.8"])
def test_an_unknown_line_is_refused_naming_the_field(version):
    with pytest.raises(ValidationError, match="server.version"):
        settings_for(version)


def test_4x_clients_reach_the_server_on_4647_3000_and_8585():
    def server_ports(version: str) -> str:
        sets, rules = egress_rules(settings_for(version), STAND_IN)
        return next(rule["ports"] for rule in rules if rule["set"] == "servers")

    assert server_ports("4.8") == "{ 4647, 3000, 8585 }"
    assert server_ports("3.4") == "4647"


def test_config_check_names_every_missing_4x_field_at_once(tmp_path):
    inventory = write_inventory(tmp_path, BASE + '[network]\nadmin_cidrs = ["198.51.100.0/24"]\n')
    proc = cli_here("config", "check", str(inventory))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    for field in (
        "nomad.servers",
        "nomad.tls.ca_file",
        "nomad.tls.cert_file",
        "nomad.tls.key_file",
        "network.nomad_server_cidrs",
        "nomad.release_url",
        "no host key for client-1",
    ):
        assert field in proc.stderr, (field, proc.stderr)
    # what came from the line is said, not hidden
    assert 'nomad.version = "1.7.7": default of server.version 4.10' in proc.stderr


def test_a_3x_install_needs_no_servers_or_tls(tmp_path):
    toml = BASE + '[server]\nversion = "3.4"\n[network]\nadmin_cidrs = ["198.51.100.0/24"]\n'
    proc = cli_here("config", "check", str(write_inventory(tmp_path, toml)))
    assert proc.returncode == 2
    assert "nomad.servers" not in proc.stderr and "nomad.tls" not in proc.stderr


def test_the_deploy_refuses_a_4x_inventory_without_servers(tmp_path):
    """The inventory file pyinfra loads refuses with the same reasons, all at once, exit 2."""
    inventory = write_inventory(tmp_path, BASE + '[network]\nadmin_cidrs = ["198.51.100.0/24"]\n')
    code = f"import runpy; runpy.run_path({str(inventory)!r})"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.returncode == 2 and "Traceback" not in loaded.stderr
    assert "nomad.servers" in loaded.stderr and "no host key" in loaded.stderr, loaded.stderr
