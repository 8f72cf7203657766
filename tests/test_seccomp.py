"""The seccomp profile: the installed engine's default, plus exactly CircleCI's addition."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from cci_harden.config.settings import FleetSettings
from cci_harden.controls.seccomp import (
    CIRCLECI_ADDITION,
    ENGINE_DEFAULTS,
    circleci_profile,
    default_for,
    docker_default,
    engine_major,
    render_profile,
)

PACKAGE = "golang-github-docker-docker-dev"
PROFILE_IN_PACKAGE = "usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json"
DATA = Path(__file__).resolve().parents[1] / "cci_harden"
# syscalls Docker's default allows from 26.x or 28.x on; refused (EPERM, not ENOSYS) by 20.10's
NEWER = {"fchmodat2", "cachestat", "map_shadow_stack"}


def unconditional(profile: dict) -> set[str]:
    return {
        name
        for rule in profile["syscalls"]
        if rule["action"] == "SCMP_ACT_ALLOW"
        and not rule.get("includes")
        and not rule.get("excludes")
        and not rule.get("args")
        for name in rule["names"]
    }


@pytest.fixture(scope="module")
def debian_default(tmp_path_factory) -> dict:
    """Docker 20.10's default profile from Debian 12's own package, from this machine's mirror."""
    workdir = tmp_path_factory.mktemp("deb")
    subprocess.run(
        ["apt-get", "download", "-q", PACKAGE], cwd=workdir, check=True, capture_output=True
    )
    deb = next(workdir.glob(f"{PACKAGE}_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(workdir / "x")], check=True)
    return json.loads((workdir / "x" / PROFILE_IN_PACKAGE).read_text())


@pytest.mark.parametrize("entry", ENGINE_DEFAULTS, ids=lambda e: e.engine)
def test_each_vendored_default_is_the_file_its_provenance_names(entry):
    data = (DATA / entry.file).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry.sha256, entry.source


@pytest.mark.testbed  # the real layer: it reads Debian's mirror, as the test hosts do
def test_the_debian_12_default_is_the_package_itself(debian_default):
    assert docker_default("20.10") == debian_default


@pytest.mark.parametrize("entry", ENGINE_DEFAULTS, ids=lambda e: e.engine)
def test_rendered_profile_is_the_engine_default_plus_exactly_circlecis_rule(entry):
    default = docker_default(entry.engine)
    rendered = json.loads(render_profile(entry.major))
    assert {k: v for k, v in rendered.items() if k != "syscalls"} == {
        k: v for k, v in default.items() if k != "syscalls"
    }
    assert rendered["syscalls"][:-1] == default["syscalls"]
    assert rendered["syscalls"][-1] == CIRCLECI_ADDITION
    assert CIRCLECI_ADDITION["names"] == ["clone", "setns", "unshare"]


def test_default_alone_keeps_unshare_behind_cap_sys_admin():
    """The addition matters: without it, unshare needs CAP_SYS_ADMIN, which jobs do not have."""
    for entry in ENGINE_DEFAULTS:
        assert not {"unshare", "setns"} & unconditional(docker_default(entry.engine)), entry


@pytest.mark.parametrize(
    ("docker", "engine"),
    [
        ({"install_source": "docker.io"}, "20.10"),
        ({"install_source": "docker-ce", "version": "5:28.1.1-1~debian.12~bookworm"}, "28.5"),
        ({"install_source": "docker-ce", "version": "5:27.5.1-1~debian.12~bookworm"}, "26.1"),
        ({"install_source": "docker-ce", "version": "5:26.1.4-1~debian.12~bookworm"}, "26.1"),
        ({"install_source": "docker-ce", "version": "5:29.0.0-1~debian.12~bookworm"}, "28.5"),
    ],
)
def test_the_base_follows_the_engine_the_settings_install(docker, engine):
    settings = FleetSettings.model_validate({"docker": docker})
    assert default_for(engine_major(settings)).engine == engine


def test_a_newer_engine_keeps_the_syscalls_its_default_allows():
    """The example inventory pins docker-ce 28: fchmodat2 and friends stay allowed for jobs."""
    assert NEWER <= unconditional(circleci_profile(28))
    assert not NEWER & unconditional(circleci_profile(20))


def test_render_is_reproducible():
    for entry in ENGINE_DEFAULTS:
        assert (
            render_profile(entry.major)
            == json.dumps(circleci_profile(entry.major), indent=2) + "\n"
        )


def test_without_an_inventory_the_newest_line_is_rendered():
    from cci_harden.cloud.command import _seccomp_major

    assert _seccomp_major(None, None) == ENGINE_DEFAULTS[-1].major
    assert _seccomp_major(None, 20) == 20
