"""The seccomp profile: Docker's default as Debian ships it, plus exactly the seed's addition."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cci_harden.controls.seccomp import CIRCLECI_ADDITION, circleci_profile, render_profile

PACKAGE = "golang-github-docker-docker-dev"
PROFILE_IN_PACKAGE = "usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json"


@pytest.fixture(scope="module")
def debian_default(tmp_path_factory) -> dict:
    """Docker's default profile from Debian's own package, fetched from this machine's mirror."""
    workdir = tmp_path_factory.mktemp("deb")
    subprocess.run(
        ["apt-get", "download", "-q", PACKAGE], cwd=workdir, check=True, capture_output=True
    )
    deb = next(workdir.glob(f"{PACKAGE}_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(workdir / "x")], check=True)
    return json.loads((workdir / "x" / PROFILE_IN_PACKAGE).read_text())


def test_rendered_profile_allows_everything_the_default_allows(debian_default):
    rendered = json.loads(render_profile())
    assert rendered["defaultAction"] == debian_default["defaultAction"]
    assert rendered["archMap"] == debian_default["archMap"]
    for rule in debian_default["syscalls"]:
        assert rule in rendered["syscalls"], rule["names"]


def test_the_only_addition_is_the_seeds_rule(debian_default):
    rendered = json.loads(render_profile())
    extra = [rule for rule in rendered["syscalls"] if rule not in debian_default["syscalls"]]
    assert extra == [CIRCLECI_ADDITION]
    assert CIRCLECI_ADDITION["names"] == ["clone", "setns", "unshare"]
    assert CIRCLECI_ADDITION["action"] == "SCMP_ACT_ALLOW" and CIRCLECI_ADDITION["args"] == []


def test_default_alone_keeps_unshare_behind_cap_sys_admin(debian_default):
    """The addition matters: without it, unshare needs CAP_SYS_ADMIN, which jobs do not have."""
    unconditional = {
        name
        for rule in debian_default["syscalls"]
        if rule["action"] == "SCMP_ACT_ALLOW" and not rule["includes"] and not rule["args"]
        for name in rule["names"]
    }
    assert "unshare" not in unconditional and "setns" not in unconditional


def test_render_is_reproducible():
    assert render_profile() == render_profile()
    assert render_profile().encode() == (json.dumps(circleci_profile(), indent=2) + "\n").encode()
    vendored = Path(__file__).resolve().parents[1] / "cci_harden/data/docker-default-seccomp.json"
    assert json.loads(vendored.read_text())["syscalls"] == circleci_profile()["syscalls"][:-1]
