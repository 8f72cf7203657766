"""What each change costs a running build, decided from recorded host state: no host, no root.

Each kind answers for the difference the deploy would apply; the plan names the worst of them,
and the deploy, the rollout and its --dry read the same decision."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import subprocess

import pytest

from cci_harden import controls as catalogue
from cci_harden.config.settings import load_settings
from cci_harden.controls import docker as docker_controls
from cci_harden.controls import nomad as nomad_controls
from cci_harden.model.disruption import host_disruptions
from cci_harden.model.hostinfo import STAND_IN
from cci_harden.model.interruption import DOCKERD_RELOADABLE_KEYS, Interruption
from cci_harden.model.kinds import DockerRuntime, ManagedFile, Manifest, NomadRelease, Package
from cci_harden.model.kinds.files import FileState
from cci_harden.model.kinds.manifest import ManifestEntry
from cci_harden.model.kinds.runtime import InstalledRelease
from cci_harden.model.plan import ControlPlan
from cci_harden.model.snapshot import Snapshot, build_script, parse_output
from cci_harden.model.waivers import Waiver

from .test_settings import VALID, write_inventory

DAEMON = {"userns-remap": "default", "log-opts": {"max-size": "10m"}, "live-restore": True}


def daemon_file(config: dict) -> ManagedFile:
    return ManagedFile(
        "/etc/docker/daemon.json",
        json.dumps(config),
        reload=("docker",),
        reloadable_keys=DOCKERD_RELOADABLE_KEYS,
    )


def on_disk(config: dict) -> FileState:
    return FileState(0o644, "root", "root", "0" * 64, json.dumps(config))


def test_a_daemon_json_change_to_reloadable_keys_only_is_a_reload():
    wanted = daemon_file({**DAEMON, "registry-mirrors": ["http://mirror.internal:5000"]})
    assert wanted.interruption(on_disk(DAEMON)) is Interruption.RELOAD
    assert wanted.reloads_only(on_disk(DAEMON))


def test_a_daemon_json_change_to_any_other_key_kills_builds():
    wanted = daemon_file({**DAEMON, "log-opts": {"max-size": "20m"}})
    assert wanted.interruption(on_disk(DAEMON)) is Interruption.RESTART_KILLS_BUILDS
    # with the content unknown (not gathered, unreadable) the restart is assumed
    unknown = FileState(0o644, "root", "root", "0" * 64, None)
    assert wanted.interruption(unknown) is Interruption.RESTART_KILLS_BUILDS


def test_units_decide_what_a_file_change_costs():
    assert ManagedFile("/etc/x", "x").interruption(None) is Interruption.NOTHING
    nomad = ManagedFile("/etc/nomad.d/client.hcl", "x", reload=("nomad",))
    assert nomad.interruption(None) is Interruption.RESTART_KEEPS_BUILDS
    tls = ManagedFile("/etc/nomad.d/tls/ca.pem", "x", reload=("nomad",), live_reload=True)
    assert tls.interruption(None) is Interruption.RELOAD
    sshd = ManagedFile("/etc/ssh/sshd_config.d/x.conf", "x", reload=("ssh",))
    assert sshd.interruption(None) is Interruption.RELOAD
    both = ManagedFile("/etc/x", "x", reload=("rsyslog", "docker"))
    assert both.interruption(None) is Interruption.RESTART_KILLS_BUILDS


@pytest.mark.parametrize(
    ("name", "installed", "expected"),
    [
        ("docker.io", "20.10.24", Interruption.RESTART_KILLS_BUILDS),
        ("containerd.io", "1.7.0", Interruption.RESTART_KILLS_BUILDS),
        ("runc", "1.1.5", Interruption.RESTART_KILLS_BUILDS),
        ("docker.io", None, Interruption.NOTHING),  # a first install: nothing runs yet
        ("nomad", "1.7.7-1", Interruption.RESTART_KEEPS_BUILDS),
        ("curl", "7.88", Interruption.NOTHING),
    ],
)
def test_package_changes(name, installed, expected):
    assert Package(name, "2.0").interruption(installed) is expected


def test_runtime_kinds():
    runtime = DockerRuntime("/etc/docker/seccomp.json")
    assert runtime.interruption(("{}", 0)) is Interruption.RESTART_KILLS_BUILDS
    assert runtime.interruption(("cannot connect", 1)) is Interruption.NOTHING
    release = NomadRelease("1.7.7", "http://mirror/nomad", "amd64", "A" * 40)
    assert release.interruption(InstalledRelease("1.6.3", "a", "a")) is (
        Interruption.RESTART_KEEPS_BUILDS
    )
    assert release.interruption(InstalledRelease("", "", "")) is Interruption.NOTHING
    manifest = Manifest("/var/lib/cci-harden/managed/nomad.json", ())
    stale_runc = ((ManifestEntry("package", "runc", "CCI-DKR-01"),), "")
    assert manifest.interruption(stale_runc) is Interruption.RESTART_KILLS_BUILDS
    stale_file = ((ManifestEntry("file", "/etc/x", "CCI-OS-08", ("rsyslog",)),), "")
    assert manifest.interruption(stale_file) is Interruption.RESTART_KEEPS_BUILDS


def test_the_file_gather_brings_back_a_reloadable_files_content(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(DAEMON))
    wanted = ManagedFile(str(path), "{}", reload=("docker",), reloadable_keys=("debug",))
    plain = ManagedFile(str(tmp_path / "other"), "x")
    (tmp_path / "other").write_text("secret-ish")
    script = build_script([wanted, plain], hostinfo=False)
    output = subprocess.run(["sh", "-c", script], capture_output=True, text=True).stdout
    snapshot = parse_output(output, [wanted, plain])
    assert json.loads(snapshot.state(wanted).text) == DAEMON
    assert snapshot.state(plain).text is None  # only files whose keys decide are read


# -- the plan: the deploy's own decision ---------------------------------------------------------


def _plan(*resources, control="CCI-DKR-02", off=""):
    return ControlPlan(catalogue.by_id(control), tuple(resources), off=off)


def test_host_disruptions_follow_the_deploys_decision():
    restart = daemon_file({**DAEMON, "icc": False})
    mirror_only = ManagedFile("/etc/nomad.d/client.hcl", "new", reload=("nomad",))
    same = ManagedFile("/etc/same", "x")
    snapshot = Snapshot(
        STAND_IN,
        {
            "file": {
                restart.path: on_disk(DAEMON),
                mirror_only.path: FileState(0o640, "root", "root", "0" * 64),
                same.path: FileState(0o644, "root", "root", same.sha256),
            }
        },
    )
    plans = [
        _plan(restart),
        _plan(mirror_only, same, control="CCI-NMD-04"),
        _plan(restart, control="CCI-DKR-03", off="switched off in settings"),
    ]
    found = host_disruptions(plans, snapshot, STAND_IN)
    assert [(d.control, d.resource, d.interruption) for d in found] == [
        ("CCI-DKR-02", "file:/etc/docker/daemon.json", Interruption.RESTART_KILLS_BUILDS),
        ("CCI-NMD-04", "file:/etc/nomad.d/client.hcl", Interruption.RESTART_KEEPS_BUILDS),
    ]
    assert "a restart that kills builds" in found[0].describe()
    # a current waiver: the deploy leaves the resource alone, so nothing is interrupted
    waiver = Waiver(
        control="CCI-DKR-02",
        hosts=["*"],
        justification="log rotation handled elsewhere",
        owner="ops",
        expires=dt.date.today() + dt.timedelta(days=30),
    )
    waived = host_disruptions(plans, snapshot, STAND_IN, [waiver])
    assert [d.control for d in waived] == ["CCI-NMD-04"]


def test_a_not_gathered_or_unverifiable_resource_is_never_acted_on():
    restart = daemon_file(DAEMON)
    assert host_disruptions([_plan(restart)], Snapshot(STAND_IN, {}), STAND_IN) == []


def test_the_catalogue_declares_daemon_json_with_dockerds_reloadable_keys(tmp_path):
    settings = load_settings(write_inventory(tmp_path, VALID))
    (daemon,) = [
        r
        for r in docker_controls._daemon_resources(settings, STAND_IN)
        if isinstance(r, ManagedFile)
    ]
    assert "registry-mirrors" in daemon.reloadable_keys and "log-opts" not in daemon.reloadable_keys
    assert json.loads(daemon.content)["live-restore"] is True


# -- host settings that protect builds between runs ----------------------------------------------


def test_unattended_upgrades_hold_parses_with_apts_own_reader(tmp_path):
    conf = tmp_path / "hold.conf"
    conf.write_text(nomad_controls._unattended_hold())
    proc = subprocess.run(
        ["apt-config", "-c", str(conf), "dump", "Unattended-Upgrade::Package-Blacklist"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    held = [line.split('"')[1] for line in proc.stdout.splitlines() if '"' in line]
    for name in ("docker-ce", "docker.io", "containerd", "containerd.io", "runc", "nomad"):
        assert any(re.fullmatch(p, name) for p in held), name
    assert not any(re.fullmatch(p, "docker-compose") for p in held)


def test_needrestart_hold_is_perl_that_names_each_unit():
    text = nomad_controls._needrestart_hold()
    proc = subprocess.run(
        ["perl", "-e", "my %nrconf; eval do { local $/; <STDIN> }; die $@ if $@; "
         "print join(',', sort keys %{$nrconf{override_rc}})"],
        input=text,
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for unit in ("docker", "containerd", "nomad"):
        assert f"^{unit}\\.service$" in proc.stdout


def test_nomad_drains_on_shutdown_and_the_unit_waits_longer(tmp_path):
    settings = load_settings(
        write_inventory(tmp_path, VALID + "[rollout]\ndrain_deadline_seconds = 5400\n")
    )
    hcl = nomad_controls.client_hcl(settings, STAND_IN)
    assert 'deadline           = "5400s"' in hcl and "ignore_system_jobs = true" in hcl
    unit = next(
        r
        for r in nomad_controls._service_resources(settings, STAND_IN)
        if getattr(r, "path", "") == nomad_controls.UNIT
    )
    assert "TimeoutStopSec=5520" in unit.content
    assert "KillMode=process" in unit.content and "KillSignal=SIGINT" in unit.content


def test_the_api_token_file_exists_only_with_a_token_and_is_secret(tmp_path):
    plain = load_settings(write_inventory(tmp_path, VALID))
    (absent,) = [
        r
        for r in nomad_controls._build_safety_resources(plain, STAND_IN)
        if getattr(r, "path", "").endswith("api-token")
    ]
    assert not absent.present
    with_token = load_settings(
        write_inventory(tmp_path, VALID + '[rollout]\nnomad_token = "0b2c4d6e-aaaa-bbbb"\n')
    )
    (token,) = [
        r
        for r in nomad_controls._build_safety_resources(with_token, STAND_IN)
        if getattr(r, "path", "").endswith("api-token")
    ]
    assert token.secret and token.mode == 0o600
    assert token.content == "X-Nomad-Token: 0b2c4d6e-aaaa-bbbb\n"
    assert "0b2c4d6e" not in repr(with_token)


# -- the platform gate ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("os_id", "version", "codename"),
    [("ubuntu", "22.04", "jammy"), ("debian", "11", "bullseye"), ("rocky", "9.3", "unknown")],
)
def test_an_untested_distribution_is_refused_naming_what_was_found(os_id, version, codename):
    from cci_harden.controls.platform import OS_GATE

    info = dataclasses.replace(STAND_IN, os_id=os_id, os_version=version, codename=codename)
    (gate,) = OS_GATE.resources(None, info)
    (finding,) = gate.compare(None, info)
    assert f"{os_id} {version} ({codename}) is not a release" in finding.found
    assert "Debian 12 (bookworm)" in finding.found and "Ubuntu clients are not supported" in (
        finding.found
    )
    (ok,) = OS_GATE.resources(None, STAND_IN)
    assert ok.compare(None, STAND_IN) == []


def test_the_gates_come_first_in_every_profile():
    for name, profile in catalogue.PROFILES.items():
        assert profile[0].id == "CCI-TK-03", name


# -- the kernel command line (cgroup mode) ---------------------------------------------------------

V1 = "systemd.unified_cgroup_hierarchy=0"


def _cmdline(output_dropin: str | None, cmdline: str, cgroup_fs: str, container: str = "none"):
    from cci_harden.model.kinds import KernelCmdline

    wanted = KernelCmdline(
        "/etc/default/grub.d/50-cci-harden-cgroup.cfg",
        f'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX {V1}"\n',
        (V1,),
        ("systemd.unified_cgroup_hierarchy=1",),
        "v1",
    )
    dropin = "" if output_dropin is None else f"@@{wanted.dropin}\n{output_dropin}"
    output = (
        f"{dropin}@@cmdline\n{cmdline}\n@@cgroup\n{cgroup_fs}\n"
        f"@@grub\n/usr/sbin/update-grub\n@@container\n{container}\n"
    )
    state = wanted.parse(output, [wanted])[wanted.key]
    return wanted, state


def test_a_cgroup_change_is_configured_then_needs_a_reboot():
    info = dataclasses.replace(STAND_IN, container="none")
    fresh, state = _cmdline(None, "BOOT_IMAGE=/vmlinuz root=LABEL=x ro console=ttyS0", "cgroup2fs")
    assert state.update_grub and state.dropin is None
    assert fresh.interruption(state) is Interruption.REBOOT
    found = {f.what: f for f in fresh.compare(state, info)}
    assert found[fresh.dropin].found == "absent"
    assert found["running kernel command line and cgroup mode"].found == "cgroup v2"
    # configured, not rebooted yet: still a reboot, and verify says so
    waiting, state = _cmdline(fresh.content, "root=LABEL=x ro", "cgroup2fs")
    (finding,) = waiting.compare(state, info)
    assert finding.found == "cgroup v2; reboot needed" and finding.verifiable
    assert waiting.interruption(state) is Interruption.REBOOT
    # rebooted: v1 runs
    done, state = _cmdline(fresh.content, f"root=LABEL=x ro {V1}", "tmpfs")
    assert done.compare(state, info) == [] and done.interruption(state) is Interruption.NOTHING


def test_in_a_container_the_kernel_is_the_machines_and_nothing_reboots():
    info = dataclasses.replace(STAND_IN, container="systemd-nspawn")
    wanted, state = _cmdline(None, "quiet", "cgroup2fs", container="systemd-nspawn")
    assert wanted.interruption(state) is Interruption.NOTHING
    verifiable = {f.what: f.verifiable for f in wanted.compare(state, info)}
    assert verifiable == {wanted.dropin: True, "running kernel command line and cgroup mode": False}


def test_docker_reports_its_cgroup_version():
    runtime = DockerRuntime("/p.json", cgroup="1")
    info = json.dumps(
        {
            "SecurityOptions": ["name=seccomp,profile=/p.json", "name=userns"],
            "LiveRestoreEnabled": True,
            "CgroupVersion": "2",
        }
    )
    vm = dataclasses.replace(STAND_IN, container="none")
    (finding,) = runtime.compare((info, 0), vm)
    assert (finding.expected, finding.found) == ("1", "2")
    assert runtime.compare((info, 0), dataclasses.replace(STAND_IN, container="nspawn")) == []


def test_v2_removes_the_dropin_and_config_check_warns(tmp_path):
    settings = load_settings(write_inventory(tmp_path, VALID + 'cgroup_version = "v2"\n'))
    (cmdline,) = nomad_controls._cgroup_resources(settings, STAND_IN)
    assert cmdline.content == "" and cmdline.unwanted == (V1,)


def test_a_vms_clock_jitter_between_boots_does_not_move_the_reservation():
    from cci_harden.model.hostinfo import HostInfo

    def mhz(khz: str) -> int:
        lines = ["2", "8000000", "debian 12 bookworm", "h", "amd64", khz, "", "", "none"]
        return HostInfo.parse(lines).cpu_mhz

    assert mhz("2600412") == mhz("2599992") == 2600
    assert mhz("2200000") == 2200 and mhz("0") == 0


def test_a_cgroup_mode_docker_cannot_change_by_restarting_is_no_restart():
    """Between the deploy that writes the GRUB drop-in and the reboot, dockerd reports cgroup 2
    where 1 is wanted: verify says so, but a restart would kill builds and change nothing."""
    runtime = DockerRuntime("/p.json", cgroup="1")
    daemon = {
        "SecurityOptions": ["name=seccomp,profile=/p.json", "name=userns"],
        "LiveRestoreEnabled": True,
        "CgroupVersion": "2",
    }
    vm = dataclasses.replace(STAND_IN, container="none")
    state = (json.dumps(daemon), 0)
    assert [f.what for f in runtime.compare(state, vm)] == ["dockerd cgroup version"]
    assert runtime.interruption(state) is Interruption.NOTHING
    assert not runtime.restart_repairs(state)
    stale = (json.dumps({**daemon, "LiveRestoreEnabled": False}), 0)
    assert runtime.restart_repairs(stale)
    assert runtime.interruption(stale) is Interruption.RESTART_KILLS_BUILDS
