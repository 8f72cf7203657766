"""What the toolkit writes and accepts per Debian release (12 bookworm, 13 trixie), from recorded
host facts and settings: no host, no root."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cci_harden.config.settings import load_settings
from cci_harden.controls import nomad as nomad_controls
from cci_harden.controls import ssh as ssh_controls
from cci_harden.controls.docker import SECCOMP
from cci_harden.controls.platform import OS_GATE
from cci_harden.model.hostinfo import STAND_IN
from cci_harden.model.kinds import Sysctl
from cci_harden.model.releases import CGROUP_V1_FORCE, MLKEM, SNTRUP, release_of
from cci_harden.testbed import mirror

from .test_settings import VALID, write_inventory

BOOKWORM = STAND_IN
TRIXIE = dataclasses.replace(STAND_IN, os_version="13", codename="trixie")
V1 = "systemd.unified_cgroup_hierarchy=0"


def _settings(tmp_path, nomad_lines: str = ""):
    return load_settings(write_inventory(tmp_path, VALID + nomad_lines))


def _gate_findings(settings, info):
    (gate,) = OS_GATE.resources(settings, info)
    return [f.found for f in gate.compare(None, info)]


def test_both_releases_are_supported_and_named():
    assert release_of(BOOKWORM).codename == "bookworm"
    assert release_of(TRIXIE).codename == "trixie"
    assert release_of(dataclasses.replace(STAND_IN, os_version="14", codename="forky")) is None


def test_sshd_keeps_each_releases_post_quantum_default_first(tmp_path):
    settings = _settings(tmp_path)
    for info, first in ((BOOKWORM, SNTRUP), (TRIXIE, MLKEM)):
        dropin = ssh_controls.sshd_dropin(settings, info)
        (kex_line,) = [line for line in dropin.splitlines() if line.startswith("KexAlgorithms")]
        kex = kex_line.split()[1].split(",")
        assert kex[0] == first
        # paramiko, the deploy's own client, keeps a key exchange it speaks
        assert "curve25519-sha256" in kex
        assert ssh_controls.effective(settings, info)["kexalgorithms"] == ",".join(kex)
    # OpenSSH 9.2 has no ML-KEM: naming it there would make sshd -t refuse the drop-in
    assert MLKEM not in ssh_controls.sshd_dropin(settings, BOOKWORM)


def test_docker_io_gets_the_seccomp_default_of_the_releases_own_engine(tmp_path):
    settings = _settings(tmp_path)
    docker_io = settings.docker.model_copy(update={"install_source": "docker.io"})
    settings = settings.model_copy(update={"docker": docker_io})
    profiles = {}
    for info in (BOOKWORM, TRIXIE):
        (profile,) = SECCOMP.resources(settings, info)
        profiles[info.codename] = json.loads(profile.content)
    names = {
        codename: {n for rule in p["syscalls"] for n in rule["names"]}
        for codename, p in profiles.items()
    }
    # Docker 26 (Debian 13) allows syscalls that 20.10 (Debian 12) did not know
    assert {"cachestat", "fchmodat2"} <= names["trixie"] - names["bookworm"]


def test_debian_13_reads_no_sysctl_conf_so_a_line_there_overrides_nothing():
    output = (
        "net.ipv4.ip_forward|rw|1\n@@files\n"
        "/etc/sysctl.d/60-cci-harden.conf:net.ipv4.ip_forward = 1\n"
        "/etc/sysctl.conf:net.ipv4.ip_forward = 0\n"
    )
    on_12 = Sysctl("net.ipv4.ip_forward", "1", "/etc/sysctl.d/60-cci-harden.conf")
    on_13 = dataclasses.replace(on_12, reads_sysctl_conf=False)
    state = Sysctl.parse(output, [on_12])[on_12.name]
    assert on_12.overriding(state) == [("/etc/sysctl.conf", "0")]
    assert on_13.overriding(state) == [] and on_13.compare(state, TRIXIE) == []


def test_cgroup_v1_on_debian_13_is_refused_unless_the_operator_says_so(tmp_path):
    default = _settings(tmp_path)
    assert default.nomad.cgroup_version == "v1"
    assert _gate_findings(default, BOOKWORM) == []
    (refusal,) = _gate_findings(default, TRIXIE)
    assert "Debian 13 (trixie): cgroup v1" in refusal
    assert "nomad.allow_deprecated_cgroup_v1 = true" in refusal and "v2" in refusal

    allowed = _settings(tmp_path, "allow_deprecated_cgroup_v1 = true\n")
    assert _gate_findings(allowed, TRIXIE) == []
    (on_13,) = nomad_controls._cgroup_resources(allowed, TRIXIE)
    assert on_13.wanted == (V1, CGROUP_V1_FORCE)
    assert f"{V1} {CGROUP_V1_FORCE}" in on_13.content
    (on_12,) = nomad_controls._cgroup_resources(allowed, BOOKWORM)
    assert on_12.wanted == (V1,)  # systemd 252 needs no force

    v2 = _settings(tmp_path, 'cgroup_version = "v2"\n')
    assert _gate_findings(v2, TRIXIE) == []


def test_the_setting_is_a_strict_boolean(tmp_path):
    from cci_harden.model.errors import SettingsError

    with pytest.raises(SettingsError, match="allow_deprecated_cgroup_v1"):
        _settings(tmp_path, 'allow_deprecated_cgroup_v1 = "yes"\n')


def test_a_release_the_machine_does_not_list_comes_from_its_own_mirror():
    own = [
        mirror.AptSource("http://m.invalid/debian", ("bookworm", "bookworm-updates"), ("main",)),
        mirror.AptSource("http://m.invalid/debian-security", ("bookworm-security",), ("main",)),
    ]
    derived = mirror.debian_sources("trixie", own)
    assert [(s.uri, s.suites) for s in derived] == [
        ("http://m.invalid/debian", ("trixie", "trixie-updates")),
        ("http://m.invalid/debian-security", ("trixie-security",)),
    ]
    assert mirror.debian_sources("bookworm", own) == own
    assert mirror.debian_mirror("trixie", own) == "http://m.invalid/debian"


def test_the_testbed_cli_offers_exactly_the_releases_it_boots():
    from cci_harden.cli import build_parser
    from cci_harden.testbed.layout import RELEASES

    parser = build_parser()
    bed = parser._subparsers._group_actions[0].choices["testbed"]
    up = bed._subparsers._group_actions[0].choices["up"]
    (release,) = [a for a in up._actions if a.dest == "release"]
    assert set(release.choices) == set(RELEASES)


def test_debian_13s_docker_io_brings_its_client_which_moved_to_docker_cli(tmp_path):
    from cci_harden.controls.docker import engine_packages

    settings = _settings(tmp_path)
    docker_io = settings.docker.model_copy(update={"install_source": "docker.io"})
    settings = settings.model_copy(update={"docker": docker_io})
    on_12 = [p.name for p in engine_packages(settings, BOOKWORM)]
    on_13 = [p.name for p in engine_packages(settings, TRIXIE)]
    assert "docker-cli" in on_13 and "docker-cli" not in on_12
    assert {"docker.io", "containerd", "runc", "apparmor"} <= set(on_12) & set(on_13)


def test_one_docker_ce_pin_serves_both_releases():
    from cci_harden.controls.docker import docker_ce_version

    pin = "5:27.3.1-1~debian.12~bookworm"
    assert docker_ce_version(pin, BOOKWORM) == pin
    assert docker_ce_version(pin, TRIXIE) == "5:27.3.1-1~debian.13~trixie"
    assert docker_ce_version("27.3.1", TRIXIE) == "27.3.1"  # no release suffix: as written
    assert docker_ce_version(None, TRIXIE) is None
