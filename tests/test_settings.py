"""Settings: valid files load, every class of bad value is refused with the field and origin."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import textwrap
import tomllib
from pathlib import Path

import pytest

from cci_harden.config.settings import load_settings
from cci_harden.model.errors import SettingsError

from .conftest import INVENTORIES, cli_here

SECRET = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LW1hcmtlci0xMjM0NQ==\n-----END PRIVATE KEY-----\n"
MARKER = "c2VjcmV0LW1hcmtlci0xMjM0NQ"

BASE = """
name = "acme"
[inventory]
hosts = [{ name = "client-1", address = "192.0.2.10" }]
"""
VALID = (
    BASE
    + """
[network]
admin_cidrs = ["198.51.100.0/24"]
[nomad]
version = "1.6.3"
servers = ["nomad.internal:4647"]
"""
)


def write_inventory(tmp_path: Path, toml: str, name: str = "acme") -> Path:
    inventory = tmp_path / name
    inventory.write_text(
        "from cci_harden.fleet.inventory import pyinfra_hosts\n"
        "nomad_clients = pyinfra_hosts(__file__)\n"
    )
    (tmp_path / f"{name}.toml").write_text(textwrap.dedent(toml))
    return inventory


def error_for(tmp_path: Path, toml: str, monkeypatch=None, **env) -> str:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as info:
        load_settings(write_inventory(tmp_path, toml))
    return str(info.value)


def test_example_inventory_is_valid():
    settings = load_settings(INVENTORIES / "prod")
    assert settings.nomad.node_class == "linux-64bit"
    assert settings.nomad.reserved_cpu_cores == 2 and settings.nomad.reserved_memory_mb == 4096
    assert len(settings.inventory.hosts) >= 2


def test_valid_settings_load_with_defaults(tmp_path):
    settings = load_settings(write_inventory(tmp_path, VALID))
    assert settings.name == "acme"
    assert str(settings.network.admin_cidrs[0]) == "198.51.100.0/24"
    assert [str(p.base) for p in settings.docker.address_pools] == ["10.10.0.0/16"]


@pytest.mark.parametrize(
    ("snippet", "field", "problem"),
    [
        ('[network]\nadmin_cidrs = ["10.0.0.300/8"]', "network.admin_cidrs", "network"),
        ('[network]\nrerun_ssh_cidrs = ["0.0.0.0/0"]', "network.rerun_ssh_cidrs", "every address"),
        ('[network]\nadmin_cidrs = ["::/0"]', "network.admin_cidrs", "every address"),
        ('[nomad]\nversion = "latest"', "nomad.version", "exact version"),
        ('[nomad]\ngpg_fingerprint = "72D7468F"', "nomad.gpg_fingerprint", "40-hex-digit"),
        ('[nomad]\nservers = ["nomad.internal"]', "nomad.servers", "host:port"),
        ('[nomad]\ninstall_source = "curl-pipe-bash"', "nomad.install_source", "release-zip"),
        ('[docker]\nlog_max_files = "many"', "docker.log_max_files", "whole number"),
        (
            '[docker]\naddress_pools = [{ base = "10.10.0.0/16", size = 8 }]',
            "docker.address_pools.0",
            "larger than the pool",
        ),
        ('[nomad]\nversoin = "1.6.3"', "nomad.versoin", "not a known setting"),
        ('[apt]\nproxy = "not a url"', "apt.proxy", "URL"),
    ],
)
def test_each_class_of_bad_value_names_field_problem_and_file(tmp_path, snippet, field, problem):
    message = error_for(tmp_path, BASE + snippet)
    line = next((ln for ln in message.splitlines() if ln.strip().startswith(field)), None)
    assert line is not None, message
    assert problem in line
    assert "acme.toml" in line


def test_duplicate_host_names_are_refused(tmp_path):
    toml = BASE.replace(
        'hosts = [{ name = "client-1", address = "192.0.2.10" }]',
        'hosts = [{ name = "a", address = "192.0.2.10" }, { name = "a", address = "192.0.2.11" }]',
    )
    assert "repeated: a" in error_for(tmp_path, toml)


def test_invalid_toml_is_reported_with_the_file(tmp_path):
    assert "not valid TOML" in error_for(tmp_path, "name = ")


def test_env_overrides_a_nested_field(tmp_path, monkeypatch):
    monkeypatch.setenv("CCI_NOMAD__VERSION", "1.7.2")
    monkeypatch.setenv("CCI_NOMAD__TLS__EXPIRY_MARGIN_DAYS", "14")
    monkeypatch.setenv("CCI_NETWORK__ADMIN_CIDRS", '["203.0.113.0/24"]')
    settings = load_settings(write_inventory(tmp_path, VALID))
    assert settings.nomad.version == "1.7.2"
    assert settings.nomad.tls.expiry_margin_days == 14
    assert [str(c) for c in settings.network.admin_cidrs] == ["203.0.113.0/24"]
    assert settings.nomad.servers == ["nomad.internal:4647"]  # the file's other values stay


def test_bad_env_value_names_the_variable(tmp_path, monkeypatch):
    message = error_for(tmp_path, VALID, monkeypatch, CCI_DOCKER__LOG_MAX_FILES="0")
    assert "docker.log_max_files" in message
    assert "environment variable CCI_DOCKER__LOG_MAX_FILES" in message


def test_secret_never_appears_in_repr_dump_or_logs(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("CCI_NOMAD__TLS__KEY_PEM", SECRET)
    settings = load_settings(write_inventory(tmp_path, VALID))
    assert settings.nomad.tls.key_pem.get_secret_value() == SECRET
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("settings: %s %r", settings, settings)
    for text in (repr(settings), str(settings), settings.model_dump_json(), caplog.text):
        assert MARKER not in text


def test_secret_never_appears_in_validation_errors(tmp_path, monkeypatch):
    # a bad secret, and a good secret beside another bad field
    bad = SECRET.replace("PRIVATE KEY", "CERTIFICATE")
    message = error_for(tmp_path, VALID, monkeypatch, CCI_NOMAD__TLS__KEY_PEM=bad)
    assert "nomad.tls.key_pem" in message and MARKER not in message
    monkeypatch.setenv("CCI_NOMAD__TLS__KEY_PEM", SECRET)
    monkeypatch.setenv("CCI_NOMAD__TLS__KEY_FILE", "/etc/nomad.d/tls/client.key")
    message = error_for(tmp_path, VALID)
    assert "not both" in message and MARKER not in message


def test_config_check_prints_effective_settings_masked(tmp_path):
    inventory = write_inventory(tmp_path, VALID)
    (tmp_path / "acme.known_hosts").write_text(
        "192.0.2.10 ssh-ed25519 "
        "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
    )
    proc = cli_here("config", "check", str(inventory), env={"CCI_NOMAD__TLS__KEY_PEM": SECRET})
    # the settings are valid and printed; the deploy is not ready (no release source, a key
    # without certificates), and each reason is named, the key's contents never
    assert proc.returncode == 2, proc.stderr
    assert "settings valid" in proc.stderr and "not ready to deploy" in proc.stderr
    assert "nomad.release_url: required" in proc.stderr
    assert "nomad.tls: also set ca_file, cert_file" in proc.stderr
    assert '"node_class": "linux-64bit"' in proc.stdout
    assert "**********" in proc.stdout
    assert MARKER not in proc.stdout + proc.stderr


def test_config_check_exits_2_on_bad_settings(tmp_path):
    inventory = write_inventory(tmp_path, BASE + '[docker]\nlog_max_size = "huge"\n')
    proc = cli_here("config", "check", str(inventory))
    assert proc.returncode == 2
    assert "docker.log_max_size" in proc.stderr and "acme.toml" in proc.stderr


@pytest.mark.parametrize(
    ("snippet", "line"),
    [
        ('[network]\nnomad_http_api = "yes"', "network.nomad_http_api: must be true or false"),
        ("[network]\nnomad_http_api = 1", "network.nomad_http_api: must be true or false"),
        (
            '[network]\nrestrict_egress = "true"',
            "network.restrict_egress: must be true or false, unquoted",
        ),
        ('[ssh]\nmax_auth_tries = "3"', "ssh.max_auth_tries: must be a whole number, unquoted"),
        ("[ssh]\nmax_auth_tries = 3.0", "ssh.max_auth_tries: must be a whole number"),
        ("[ssh]\nmax_auth_tries = true", "ssh.max_auth_tries: must be a whole number"),
    ],
)
def test_booleans_and_numbers_are_taken_only_as_themselves(tmp_path, snippet, line):
    """A quoted "yes" would open Nomad's HTTP API were it read as true."""
    error = error_for(tmp_path, BASE + snippet)
    assert line in error and "[from " in error, error


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("CCI_NETWORK__NOMAD_HTTP_API", "true", True),
        ("CCI_NETWORK__NOMAD_HTTP_API", "on", False),
        ("CCI_NETWORK__NOMAD_HTTP_API", "1", False),
        ("CCI_SSH__MAX_AUTH_TRIES", "4", True),
        ("CCI_SSH__MAX_AUTH_TRIES", "4.0", False),
    ],
)
def test_the_environment_gives_booleans_and_numbers_as_exact_words(
    tmp_path, monkeypatch, variable, value, accepted
):
    monkeypatch.setenv(variable, value)
    inventory = write_inventory(tmp_path, VALID)
    if accepted:
        load_settings(inventory)
    else:
        with pytest.raises(SettingsError, match=f"environment variable {variable}"):
            load_settings(inventory)


def test_a_misspelt_override_is_refused_with_the_name_it_meant(tmp_path, monkeypatch):
    """pydantic-settings ignores an unknown variable: the file's value would stay, unseen."""
    error = error_for(tmp_path, VALID, monkeypatch, CCI_NOMAD_VERSION="1.7.7")
    assert "CCI_NOMAD_VERSION: is not a setting; did you mean CCI_NOMAD__VERSION?" in error


def test_config_check_prints_pure_json_and_names_each_override(tmp_path):
    inventory = write_inventory(tmp_path, VALID)
    proc = cli_here("config", "check", str(inventory), env={"CCI_NOMAD__VERSION": "1.7.7"})
    assert json.loads(proc.stdout)["nomad"]["version"] == "1.7.7"
    assert "nomad.version: set by environment variable CCI_NOMAD__VERSION" in proc.stderr
    quiet = cli_here("config", "check", str(inventory), "-q", "--checklist")
    assert "settings valid" not in quiet.stderr and "Pre-flight checklist" in quiet.stderr
    assert quiet.stdout == cli_here("-q", "config", "check", str(inventory)).stdout


def test_a_file_for_a_newer_layout_is_refused_with_the_way_out(tmp_path):
    error = error_for(tmp_path, "schema_version = 2\n" + VALID)
    assert "schema_version: this file is written for settings layout 2" in error
    assert "upgrade cci-harden" in error


def test_the_changelog_names_this_version_and_the_license_is_the_one_declared():
    """The version comes from the newest release tag (vX.Y.Z) the checkout holds; the
    changelog's newest release is that tag's."""
    from packaging.version import Version

    from cci_harden import __version__

    from .conftest import REPO

    changelog = (REPO / "CHANGELOG.md").read_text()
    newest = re.search(
        r"^## ([0-9]+\.[0-9]+\.[0-9]+) - [0-9]{4}-[0-9]{2}-[0-9]{2}$", changelog, re.M
    )
    assert newest, "CHANGELOG.md: no release heading"
    described = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--tags", "--abbrev=0", "--match", "v[0-9]*"],
        capture_output=True,
        text=True,
    )
    if described.returncode == 0:
        tag = described.stdout.strip()
        assert tag == f"v{newest.group(1)}", "tag the release the changelog names, or name it"
        assert Version(__version__).base_version == newest.group(1)
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["project"]["license"] == {"text": "Apache-2.0"}
    assert (
        "Apache License\n                           Version 2.0" in (REPO / "LICENSE").read_text()
    )


def test_a_wrong_value_and_a_missing_file_come_out_in_one_run(tmp_path):
    toml = VALID + '\n[ssh]\nmax_auth_tries = "3"\nhost_ca_file = "keys/missing-ca.pub"\n'
    error = error_for(tmp_path, toml)
    assert "ssh.max_auth_tries: must be a whole number" in error
    assert "ssh.host_ca_file: cannot read" in error and "missing-ca.pub" in error


def test_a_type_error_and_a_missing_file_come_out_together(tmp_path):
    toml = VALID + '\n[ssh]\nmax_auth_tries = "many"\nhost_ca_file = "keys/missing-ca.pub"\n'
    error = error_for(tmp_path, toml)
    assert "ssh.max_auth_tries: must be a whole number" in error
    assert "ssh.host_ca_file: cannot read" in error
