"""Every resource kind against recorded gather output: no host, no root.

``fixtures/gather-converged-tb1.json`` is what the snapshot script printed, kind by kind, on a test
host right after ``deploys/nomad.py`` (recorded with the script the deploy and verify both run).
Each test reads that output, or the same output with one drift an operator could make, through the
kind's own parser and comparison, the way pyinfra tests its facts against JSON fixtures.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess

import pytest

from cci_harden import controls as catalogue
from cci_harden.model.control import Status
from cci_harden.model.errors import CciHardenError
from cci_harden.model.hostinfo import STAND_IN, HostInfo
from cci_harden.model.kinds import (
    AuditRules,
    CertificateExpiry,
    ConfigLine,
    Directory,
    DockerRuntime,
    HostSize,
    Listeners,
    ManagedFile,
    Manifest,
    Mode,
    NftTable,
    NginxConfig,
    NomadHealth,
    NomadRelease,
    NoSetuid,
    Package,
    Service,
    SshdEffective,
    Sysctl,
    SystemAccounts,
)
from cci_harden.model.kinds.manifest import ManifestEntry
from cci_harden.model.plan import (
    ControlPlan,
    is_waived,
    plan_host,
    settle,
    switched_off,
    waived_resources,
)
from cci_harden.model.resource import NOT_GATHERED, REGISTRY
from cci_harden.model.snapshot import Snapshot, build_script, parse_output, split_probes
from cci_harden.model.verdict import evaluate

from .conftest import REPO
from .recorded import CONTAINER, RECORDED, VM

HOST = CONTAINER


def state_of(resource, output: str | None = None):
    output = RECORDED[resource.kind] if output is None else output
    return type(resource).parse(output, [resource])[resource.key]


def findings(resource, output: str | None = None, info: HostInfo = HOST) -> list:
    return resource.compare(state_of(resource, output), info)


def test_every_kind_has_a_recording_or_needs_no_gather():
    needs_none = {"host-size", "cert-expiry", "supported-os"}
    artifact_server = {"nginx-config"}  # not on a Nomad client; tested on its own output below
    assert set(REGISTRY) - needs_none - artifact_server <= set(RECORDED), "record its output"


def test_nginx_configuration_test():
    nginx = NginxConfig()
    assert findings(nginx, "@@rc 0") == []
    broken = 'nginx: [emerg] unknown directive "no_such" in /etc/nginx/sites-enabled/x:3\n@@rc 1'
    (finding,) = findings(nginx, broken)
    assert finding.found.startswith("nginx: [emerg] unknown directive")
    assert not NginxConfig.repairable


def test_host_facts_come_from_the_same_script():
    assert HOST.in_container and HOST.codename == "bookworm" and HOST.cpus >= 1


# -- file, directory, mode, setuid ---------------------------------------------------------------


ISSUE = ManagedFile("/etc/issue", "anything")


def test_managed_file_reads_mode_owner_and_digest():
    state = state_of(ISSUE)
    assert (state.mode, state.user, state.group) == (0o644, "root", "root")
    assert len(state.sha256) == 64


def test_managed_file_drift_is_named_by_resource():
    state = state_of(ISSUE)
    right = ManagedFile("/etc/issue", "")
    as_recorded = dataclasses.replace(state, sha256=right.sha256)
    assert right.compare(as_recorded, HOST) == []
    loose = dataclasses.replace(as_recorded, mode=0o666, user="nobody")
    found = {(f.resource, f.what, f.found) for f in right.compare(loose, HOST)}
    assert found == {
        ("file:/etc/issue", "/etc/issue mode", "0666"),
        ("file:/etc/issue", "/etc/issue owner", "nobody:root"),
    }
    (changed,) = right.compare(state, HOST)  # the recorded banner is not ""
    assert changed.what == "/etc/issue" and changed.found.startswith("content differs")


def test_a_secret_files_digest_is_never_shown():
    key = ManagedFile("/etc/nomad.d/tls/client-key.pem", "new key", mode=0o600, secret=True)
    (finding,) = findings(key)
    assert finding.found == "content differs"


def test_missing_present_and_a_link_where_a_file_belongs():
    missing = ManagedFile("/etc/not-there", "x")
    assert [f.found for f in findings(missing)] == ["missing"]
    absent = ManagedFile("/etc/issue", present=False)
    assert [(f.expected, f.found) for f in findings(absent)] == [("absent", "present")]
    link = "symbolic link|777|root|root|/etc/issue\n@@sha256\n"
    assert [f.found for f in findings(ISSUE, link)] == ["symbolic link"]
    assert findings(ManagedFile("/etc/nginx/sites-enabled/default", present=False)) == []


def test_directory_exact_mode_owner_and_type():
    journal = Directory("/var/log/journal", 0o2755, "root", "systemd-journal")
    assert findings(journal) == []
    loosened = RECORDED["directory"].replace(
        "2755|root|systemd-journal|/var/log/journal", "2777|root|systemd-journal|/var/log/journal"
    )
    assert [(f.what, f.found) for f in findings(journal, loosened)] == [
        ("/var/log/journal mode", "2777")
    ]
    as_file = "regular file|644|root|root|/var/log/journal\n"
    assert [f.found for f in findings(journal, as_file)] == ["regular file"]
    assert [f.found for f in findings(journal, "")] == ["missing"]


def test_docker_socket_mode_is_at_most_and_the_deploy_only_drops_bits():
    sock = Mode("/run/docker.sock", 0o660, "root", "docker")
    assert findings(sock) == []
    opened = RECORDED["mode"].replace("socket|660|root|docker", "socket|666|root|docker")
    (finding,) = findings(sock, opened)
    assert (finding.resource, finding.found) == ("mode:/run/docker.sock", "0666")
    assert sock.target_mode(state_of(sock, opened)) == 0o660
    stricter = RECORDED["mode"].replace("socket|660|root|docker", "socket|600|root|docker")
    assert findings(sock, stricter) == []
    assert findings(Mode("/etc/absent", 0o644)) == []
    assert [f.found for f in findings(Mode("/etc/absent", 0o644, required=True))] == ["missing"]


def test_setuid_and_setgid_bits():
    chfn = NoSetuid("/usr/bin/chfn")
    assert findings(chfn) == []
    assert [f.found for f in findings(chfn, "regular file|4755|root|root|/usr/bin/chfn")] == [
        "setuid (4755)"
    ]
    assert [f.found for f in findings(chfn, "regular file|2755|root|root|/usr/bin/chfn")] == [
        "setgid (2755)"
    ]
    assert findings(NoSetuid("/usr/bin/at")) == []  # not installed here


def test_gather_commands_quote_hostile_paths(tmp_path):
    """A path is data to the shell: the gather never runs what a path spells."""
    marker = tmp_path / "ran"
    hostile = f"/etc/x; touch {marker}; echo $(touch {marker})`touch {marker}`"
    script = build_script(
        [
            ManagedFile(hostile, "x"),
            Directory(hostile),
            Mode(hostile, 0o644),
            NoSetuid(hostile),
            Package("x; touch " + str(marker)),
            Service("x$(touch " + str(marker) + ")"),
            ConfigLine(hostile, "KEY", "v"),
            AuditRules(hostile, (hostile,)),
            Manifest(hostile),
        ],
        hostinfo=False,
    )
    subprocess.run(["sh", "-n"], input=script, text=True, check=True)
    proc = subprocess.run(["sh"], input=script, text=True, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    assert set(split_probes(proc.stdout)) == {
        "file", "directory", "mode", "setuid", "package", "service", "config-line",
        "audit-rules", "manifest",
    }  # fmt: skip


# -- package, service, accounts, config lines ----------------------------------------------------


def test_package_installed_pinned_and_absent():
    assert findings(Package("docker.io")) == []
    assert findings(Package("runc", "1.1.5+ds1-1+deb12u1")) == []
    (pinned,) = findings(Package("runc", "1.1.12-1"))
    assert (pinned.expected, pinned.found) == ("1.1.12-1", "1.1.5+ds1-1+deb12u1")
    removed = RECORDED["package"].replace("libpam-tmpdir|ii |", "libpam-tmpdir|rc |")
    (gone,) = findings(Package("libpam-tmpdir"), removed)
    assert (gone.resource, gone.found) == ("package:libpam-tmpdir", "absent")
    assert findings(Package("nis", present=False)) == []  # "un": known, not installed
    added = RECORDED["package"] + "\ntelnet|ii |0.17+2.4-2+deb12u1"
    (unwanted,) = findings(Package("telnet", present=False), added)
    assert unwanted.found.startswith("installed")


def unit_state(unit: str, **changes: str) -> str:
    """The recorded ``systemctl show`` output with one unit's properties changed."""
    blocks = RECORDED["service"].split("\n\n")
    for index, block in enumerate(blocks):
        if f"Id={unit}\n" in block + "\n":
            lines = block.splitlines()
            for key, value in changes.items():
                lines = [f"{key}={value}" if ln.startswith(f"{key}=") else ln for ln in lines]
            blocks[index] = "\n".join(lines)
    return "\n\n".join(blocks)


def test_service_enabled_running_stopped_masked():
    nomad = Service("nomad")
    assert findings(nomad) == []
    stopped = unit_state("nomad.service", ActiveState="inactive")
    assert [(f.what, f.found) for f in findings(nomad, stopped)] == [("nomad now", "inactive")]
    timer = Service("apt-daily-upgrade.timer")
    masked = unit_state("apt-daily-upgrade.timer", UnitFileState="masked", ActiveState="inactive")
    assert {f.found for f in findings(timer, masked)} == {"masked", "inactive"}
    disabled = unit_state("apt-daily.timer", UnitFileState="disabled")
    assert [f.found for f in findings(Service("apt-daily.timer"), disabled)] == ["disabled"]
    off = Service("cci-harden-firewall", enabled="disabled", running=False)
    assert len(findings(off)) == 2
    missing = Service("auditd")  # not installed on this container host
    assert {f.found for f in findings(missing)} == {"not-found", "inactive"}


def test_a_service_a_container_cannot_run_is_not_verifiable_there_only():
    timesync = Service("systemd-timesyncd", container_ok=False)
    (there,) = findings(timesync)
    assert not there.verifiable and "container" in there.found
    (on_a_vm,) = findings(timesync, info=VM)
    assert on_a_vm.verifiable


def test_system_accounts_shell_and_password():
    accounts = SystemAccounts()
    assert findings(accounts) == []  # root, sync are exempt; dockremap has /bin/false
    drifted = RECORDED["accounts"].replace("daemon|/usr/sbin/nologin|*", "daemon|/bin/bash|$")
    found = {f.what: f.found for f in findings(accounts, drifted)}
    assert found == {
        "system accounts with a login shell": "daemon",
        "system accounts with a usable password": "daemon",
    }


def test_login_defs_line_set_twice_or_unset():
    umask = ConfigLine("/etc/login.defs", "UMASK", "027")
    assert findings(umask) == []
    twice = RECORDED["config-line"] + "\nUMASK 022"
    assert [f.found for f in findings(umask, twice)] == ["027 and 022"]
    unset = RECORDED["config-line"].replace("UMASK\t027\n", "")
    assert [f.found for f in findings(umask, unset)] == ["unset"]


# -- sysctl and audit ----------------------------------------------------------------------------

OURS = "/etc/sysctl.d/60-cci-harden.conf"
REDIRECTS = Sysctl("net.ipv4.conf.all.send_redirects", "0", OURS)


def with_files(*lines: str) -> str:
    return RECORDED["sysctl"] + "\n" + "\n".join(lines)


def test_sysctl_converged_and_kernel_keys_read_only_in_a_container():
    assert findings(REDIRECTS) == []
    aslr = Sysctl("kernel.randomize_va_space", "2", OURS)
    state = state_of(aslr)
    assert state.access == "ro"
    assert state.persisted == (OURS, "2")


def test_sysctl_override_by_a_later_file_is_named_with_the_file():
    later = "/etc/sysctl.d/99-zz-local.conf:net.ipv4.conf.all.send_redirects = 1"
    (finding,) = findings(REDIRECTS, with_files(later))
    assert finding.found == "1 from /etc/sysctl.d/99-zz-local.conf"
    assert REDIRECTS.overriding(state_of(REDIRECTS, with_files(later))) == [
        ("/etc/sysctl.d/99-zz-local.conf", "1")
    ]


def test_sysctl_earlier_files_and_hidden_names_do_not_override():
    earlier = "/etc/sysctl.d/10-early.conf:net.ipv4.conf.all.send_redirects = 1"
    assert findings(REDIRECTS, with_files(earlier)) == []
    # /etc/sysctl.d/70-x.conf hides /usr/lib/sysctl.d/70-x.conf of the same name
    hidden = [
        "/etc/sysctl.d/70-x.conf:net.ipv4.conf.all.send_redirects = 0",
        "/usr/lib/sysctl.d/70-x.conf:net.ipv4.conf.all.send_redirects = 1",
    ]
    assert findings(REDIRECTS, with_files(*hidden)) == []
    # /etc/sysctl.conf is applied after every directory; the slash spelling is the same key
    last = "/etc/sysctl.conf:net/ipv4/conf/all/send_redirects=1"
    assert [f.found for f in findings(REDIRECTS, with_files(last))] == ["1 from /etc/sysctl.conf"]


def test_sysctl_runtime_drift_verifiable_only_where_writable():
    runtime = RECORDED["sysctl"].replace(
        "net.ipv4.conf.all.send_redirects|rw|0", "net.ipv4.conf.all.send_redirects|rw|1"
    )
    (finding,) = findings(REDIRECTS, runtime)
    assert finding.what.endswith(" now") and finding.verifiable
    kptr = Sysctl("kernel.kptr_restrict", "2", OURS)
    lines = [
        "kernel.kptr_restrict|ro|0" if line.startswith("kernel.kptr_restrict|") else line
        for line in RECORDED["sysctl"].splitlines()
    ]
    (read_only,) = findings(kptr, "\n".join(lines))
    assert not read_only.verifiable and "read-only here" in read_only.found
    writable = "\n".join(lines).replace("kernel.kptr_restrict|ro|0", "kernel.kptr_restrict|rw|0")
    assert findings(kptr, writable)[0].verifiable


def test_audit_rules_not_verifiable_in_a_container_and_named_on_a_vm():
    rules = AuditRules("/etc/audit/rules.d/60-cci-harden.rules", ("/etc/docker", "/etc/passwd"))
    (finding,) = findings(rules)
    assert not finding.verifiable
    state = state_of(rules)
    assert "/etc/docker" in state.present and not state.loaded
    loaded = RECORDED["audit-rules"] + "\nloaded -w /etc/docker -p wa -k cci-docker\nenabled 1"
    (on_vm,) = findings(rules, loaded, info=VM)
    missing = on_vm.found.split(", ")
    assert "/etc/passwd" in missing and "/etc/docker" not in missing
    # every watch loaded, but the kernel's audit flag off: nothing would be recorded
    everything = loaded + "".join(
        f"\nloaded -w {line[8:]} -p wa -k cci-x"
        for line in RECORDED["audit-rules"].splitlines()
        if line.startswith("present ")
    )
    assert findings(rules, everything, info=VM) == []
    (off,) = findings(rules, everything.replace("enabled 1", "enabled 0"), info=VM)
    assert off.what == "auditing enabled in the kernel" and off.found == "0"


# -- network, runtime reads ----------------------------------------------------------------------


def test_nft_table_loaded_absent_or_changed_at_runtime():
    ingress = NftTable("ingress", "cci-harden-firewall")
    assert findings(ingress) == []
    text = RECORDED["nft-table"]
    lines = text.splitlines()
    live = lines.index("@@ingress") + 3  # the live rules' checksum
    changed = "\n".join([*lines[:live], "0" * 64, *lines[live + 1 :]])
    assert [f.found for f in findings(ingress, changed)] == ["changed at runtime"]
    gone = text.rsplit("present", 1)[0] + "absent"
    assert [f.found for f in findings(ingress, gone)] == ["absent"]


def test_listeners_only_allowed_or_loopback():
    allowed = Listeners((("tcp", 22, 22),))
    assert findings(allowed) == []  # containerd's is on loopback
    stray = RECORDED["listeners"] + (
        '\ntcp LISTEN 0 5 0.0.0.0:8089 0.0.0.0:* users:(("python3",pid=9,fd=3))'
    )
    (finding,) = findings(allowed, stray)
    assert finding.what == "tcp 0.0.0.0:8089 (python3)"
    assert not Listeners.repairable


def test_runtime_reads_sshd_docker_nomad():
    sshd = SshdEffective((("maxauthtries", "3"), ("permitrootlogin", "without-password")))
    assert findings(sshd) == []  # the recording: maxauthtries 3, permitrootlogin without-password
    assert [f.found for f in findings(SshdEffective((("maxauthtries", "6"),)))] == ["3"]
    docker = DockerRuntime("/etc/docker/seccomp/circleci.json")
    assert findings(docker) == []
    down = "Cannot connect to the Docker daemon\n@@rc 1"
    assert [f.what for f in findings(docker, down)] == ["dockerd"]
    old_config = (
        RECORDED["docker-runtime"]
        .replace(', "name=userns"', "")
        .replace('"LiveRestoreEnabled": true', '"LiveRestoreEnabled": false')
    )
    assert {f.what for f in findings(docker, old_config)} == {
        "dockerd userns-remap",
        "dockerd live-restore",
    }
    release = NomadRelease("1.6.3", "http://mirror/", "amd64", "F" * 40)
    assert findings(release) == []
    swapped = RECORDED["nomad-release"].replace("actual_sha256=d24b", "actual_sha256=0000")
    assert [f.found for f in findings(release, swapped)] == ["a different binary"]
    (health,) = findings(NomadHealth())
    assert not health.verifiable  # the test bed's stand-in binary


def test_checks_that_need_no_gather():
    assert HostSize(None, "fits").compare(None, HOST) == []
    assert HostSize("too small", "").compare(None, HOST)[0].found == "too small"
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=3, hours=1)
    assert CertificateExpiry("/c.pem", soon, 30).compare(None, HOST)[0].found == "3 days"
    assert CertificateExpiry("/c.pem", soon, 2).compare(None, HOST) == []


# -- snapshot, plan, lifecycle, switches, waivers ------------------------------------------------


def test_a_resource_the_snapshot_lacks_is_a_defect_never_a_pass():
    plan = ControlPlan(catalogue.by_id("CCI-OS-03"), (ManagedFile("/etc/x", "y"),))
    outcome = evaluate(plan, Snapshot(), HOST)
    assert outcome.status is Status.FAIL and "not gathered" in outcome.findings[0].found
    assert Snapshot().state(ManagedFile("/etc/x")) is NOT_GATHERED


def test_the_snapshot_script_round_trips_every_recorded_kind():
    token = "0123abcd"
    encoded = f"@@cci-snapshot {token}\n" + "".join(
        f"@@probe {kind} {token}\n{text}\n@@end 0 {token}\n" for kind, text in RECORDED.items()
    )
    assert split_probes(encoded) == RECORDED
    # framing lines without the run's token are output, not framing
    forged = encoded.replace(
        f"@@probe host-size {token}\n", f"@@probe host-size {token}\n@@end 0 guess\n"
    )
    assert split_probes(forged)["host-size"] == "@@end 0 guess\n" + RECORDED["host-size"]
    resources = [ManagedFile("/etc/issue"), Package("nftables"), Service("docker")]
    snapshot = parse_output(encoded, resources)
    assert snapshot.info.hostname == "tb1"
    assert snapshot.state(Package("nftables")).startswith("1.0.6")


def manifest_state(entries, text="x"):
    return (tuple(ManifestEntry(*e) for e in entries), text)


def test_manifest_stale_entries_and_packages_counted_as_ours():
    manifest = Manifest("/m.json", (ManifestEntry("file", "/etc/a", "CCI-OS-03"),))
    previous = manifest_state([("file", "/etc/a", "CCI-OS-03"), ("file", "/etc/b", "CCI-OS-09")])
    (stale,) = manifest.stale(previous)
    assert stale.key == "/etc/b"
    (finding,) = manifest.compare(previous, HOST)
    assert "CCI-OS-09 no longer applies" in finding.expected
    assert manifest.stale(None) == [] and manifest.needs_write(None)

    control = catalogue.by_id("CCI-OS-03")
    plans = [
        ControlPlan(control, (Package("debsums"), Package("curl"), ManagedFile("/etc/a"))),
        ControlPlan(catalogue.LIFECYCLE, (Manifest("/m.json"),)),
    ]
    snapshot = Snapshot(
        states={
            "package": {"debsums": None, "curl": "7.88"},  # debsums is installed by this run
            "manifest": {"/m.json": None},
            "file": {"/etc/a": None},
        }
    )
    (settled,) = settle(plans, snapshot)[-1].resources
    assert {(e.kind, e.key) for e in settled.entries} == {
        ("package", "debsums"),
        ("file", "/etc/a"),
    }  # curl was there before: never ours to remove


class _Hosts:
    def __init__(self, switches, hosts):
        self.controls = switches
        self.inventory = type("I", (), {"hosts": hosts})()


def test_switches_per_inventory_and_per_group(example_settings):
    from cci_harden.config.settings import ControlSwitches, GroupSwitches, HostEntry

    switches = ControlSwitches(
        disabled=["CCI-NET-04"], groups={"gpu": GroupSwitches(disabled=["CCI-OS-02"])}
    )
    hosts = [
        HostEntry(name="a", address="10.0.0.1", groups=["gpu"]),
        HostEntry(name="b", address="10.0.0.2"),
    ]
    fake = _Hosts(switches, hosts)
    assert set(switched_off(fake, "a")) == {"CCI-NET-04", "CCI-OS-02"}
    assert set(switched_off(fake, "b")) == {"CCI-NET-04"}
    real = example_settings.model_copy(update={"controls": switches})
    plans = plan_host(catalogue.PROFILES["baseline"], real, STAND_IN, "baseline")
    off = {p.control.id: p.off for p in plans if p.off}
    assert "CCI-NET-04" not in off  # not in the baseline profile
    outcome = evaluate(ControlPlan(catalogue.by_id("CCI-NET-04"), off="switched off"), None, HOST)
    assert outcome.status is Status.NOT_APPLICABLE and outcome.note == "switched off"


def test_waivers_accept_named_resources_on_named_hosts_until_they_expire():
    from cci_harden.model.waivers import Waiver

    today = dt.date(2026, 11, 30)
    waiver = Waiver(
        control="CCI-OS-07",
        hosts=["tb*"],
        justification="timer replaced by the image pipeline",
        owner="platform@example.com",
        expires=dt.date(2026, 12, 31),
        resources=["service:apt-daily.timer"],
    )
    accepted = waived_resources([waiver], "CCI-OS-07", "tb1", today)
    assert is_waived("service:apt-daily.timer", accepted)
    assert not is_waived("directory:/var/log/journal", accepted)
    assert waived_resources([waiver], "CCI-OS-07", "other", today) is None
    assert waived_resources([waiver], "CCI-OS-07", "tb1", dt.date(2027, 1, 1)) is None
    whole = waiver.model_copy(update={"resources": []})
    assert is_waived("anything:at-all", waived_resources([whole], "CCI-OS-07", "tb1", today))


@pytest.fixture
def example_settings():
    from cci_harden.config.settings import load_settings

    return load_settings(REPO / "inventories" / "prod")


def test_each_control_declares_only_known_kinds_and_unique_ids(example_settings):
    for control in catalogue.ALL_CONTROLS:
        try:
            resources = list(control.resources(example_settings, STAND_IN))
        except Exception:  # noqa: BLE001  (material the example does not ship)
            continue
        ids = [r.id for r in resources]
        assert len(ids) == len(set(ids)), control.id
        assert all(r.kind in REGISTRY for r in resources)


# -- what an interrupted run leaves (CCI-TK-02) ---------------------------------------------------


def test_an_interrupted_dpkg_run_is_found_and_who_holds_the_lock_is_read():
    from cci_harden.model.kinds.recovery import PackageSystem

    resource = PackageSystem()
    assert findings(resource) == []
    interrupted = (
        "@@journal\n2\n@@audit\nThe following packages are only half configured, probably due to "
        "problems\n configuring them the first time.\n auditd   User space tools for security "
        "auditing\n@@lock\n4242 (unattended-upgr)\n"
    )
    state = PackageSystem.parse(interrupted, [resource])["packages"]
    assert state.lock_holder == "4242 (unattended-upgr)"
    found = resource.compare(state, HOST)
    assert [f.what for f in found] == ["dpkg journal", "dpkg --audit"]
    assert "2 pending entries" in found[0].found and "auditd" in found[1].found
    assert {f.resource for f in found} == {"dpkg:packages"}


def test_staged_copies_left_by_a_cut_off_run_are_found_only_in_managed_directories():
    from cci_harden.model.kinds.recovery import StagedFiles

    resource = StagedFiles(("/etc/docker", "/etc/nomad.d"))
    assert findings(resource, "") == []
    output = (
        "/etc/docker/daemon.json.cci-new\n/etc/nomad.d/.client-key.pem.cci-upload\n"
        "/etc/other/x.cci-new\n"
    )
    state = StagedFiles.parse(output, [resource])[resource.key]
    assert state == ("/etc/docker/daemon.json.cci-new", "/etc/nomad.d/.client-key.pem.cci-upload")
    assert [f.what for f in resource.compare(state, HOST)] == list(state)


def buildable(settings) -> list:
    """The nomad profile's controls the example inventory can build (it ships no keys)."""

    def builds(control) -> bool:
        try:
            control.resources(settings, HOST)
        except (OSError, ValueError, CciHardenError):
            return False
        return True

    return [c for c in catalogue.PROFILES["nomad"] if builds(c)]


def test_recovery_comes_after_the_gates_and_covers_every_managed_directory(example_settings):
    from cci_harden.model.kinds import ManagedFile
    from cci_harden.model.kinds.recovery import StagedFiles

    settings = example_settings
    controls = buildable(settings)
    plans = plan_host(controls, settings, HOST, "nomad")
    ids = [p.control.id for p in plans]
    assert ids[:3] == ["CCI-TK-03", "CCI-NMD-01", "CCI-TK-02"] and ids[-1] == "CCI-TK-01"
    staged = next(r for r in plans[2].resources if isinstance(r, StagedFiles))
    managed = {
        r.path.rsplit("/", 1)[0] for p in plans for r in p.resources if isinstance(r, ManagedFile)
    }
    assert set(staged.directories) == managed
    partial = plan_host(controls[:3], settings, HOST, "nomad", lifecycle=False)
    assert "CCI-TK-02" not in [p.control.id for p in partial]


def test_planned_control_ids_are_plan_hosts_order(example_settings):
    from cci_harden.model.plan import planned_control_ids

    controls = buildable(example_settings)
    for lifecycle in (True, False):
        plans = plan_host(controls, example_settings, HOST, "nomad", lifecycle)
        assert planned_control_ids(controls, lifecycle) == [p.control.id for p in plans]


def test_an_operator_checks_host_is_read_from_its_test_id():
    from cci_harden.verify.plugin import _site_host

    assert _site_host("prod.checks/test_site.py::test_agent[ssh://client-1]") == "client-1"
    assert _site_host("prod.checks/test_site.py::test_agent[paramiko://c2.example]") == "c2.example"
    assert _site_host("prod.checks/test_site.py::test_agent") == ""
