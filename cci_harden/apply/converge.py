"""How the deploy makes each resource kind so: pyinfra operations, one function per kind.

Called only for a resource whose comparison with the host's snapshot found something (or, for
audit rules, whose rules file changes in this run). What a change means for a service is recorded
in :class:`Run` and acted on once, at the end, after every file the service reads is in place.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from functools import singledispatch
from typing import TYPE_CHECKING, Any

from pyinfra import host, logger
from pyinfra.operations import apt, files, server, systemd

from ..model.hostinfo import HostInfo
from ..model.kinds import (
    AuditRules,
    Directory,
    DockerRuntime,
    HostCertificate,
    HostSize,
    KernelCmdline,
    ManagedFile,
    Manifest,
    Mode,
    NftTable,
    NomadRelease,
    NoSetuid,
    Package,
    Service,
    SupportedOs,
    Sysctl,
    SystemAccounts,
)
from ..model.kinds.recovery import PackageSystem, StagedFiles
from ..model.kinds.system import ConfigLine
from ..model.plan import FIRST_BOOT, IMAGE
from ..model.resource import Resource
from .certificates import sign_host_key
from .operations import managed_file, refuse, remove_path, shell_quoted
from .release import release
from .sshd import guarded_config

if TYPE_CHECKING:
    from ..config.settings import FleetSettings


@dataclass
class Run:
    """What one host's deploy has done so far, for the decisions that depend on it."""

    settings: FleetSettings
    info: HostInfo
    control_id: str = ""
    restarts: dict[str, tuple[str, str]] = field(default_factory=dict)  # unit -> (control, why)
    reloads: dict[str, tuple[str, str]] = field(default_factory=dict)  # a reload is enough
    changed_paths: set[str] = field(default_factory=set)
    lists_refreshed: bool = False
    repos_changed: bool = False  # an apt source, key or pin changed since the last refresh
    login_timeout: int = 20
    stage: str = ""  # model.plan.STAGES: "image" writes what is on disk and starts nothing
    local: bool = False  # run on the host itself: no SSH connection of ours to prove

    @property
    def starts_nothing(self) -> bool:
        return self.stage == IMAGE

    @property
    def queues_starts(self) -> bool:
        return self.stage == FIRST_BOOT

    def tag(self, text: str) -> str:
        return f"[{self.control_id}] {text}"

    def restart(self, unit: str, why: str) -> None:
        """``unit`` restarts at the end, once, naming the first control and reason."""
        self.restarts.setdefault(unit, (self.control_id, why))

    def reload(self, unit: str, why: str) -> None:
        """``unit`` rereads its configuration at the end (unless it restarts anyway)."""
        self.reloads.setdefault(unit, (self.control_id, why))


@singledispatch
def converge(resource: Resource, state, run: Run) -> None:
    host.log(run.tag(f"{resource.id} cannot be repaired by the deploy: see the verify report"))


def repairs(resource: Resource) -> bool:
    """Whether the deploy has a way to make this kind so (else verify alone reports it)."""
    return converge.dispatch(type(resource)) is not converge.dispatch(Resource)


@converge.register
def _host_certificate(resource: HostCertificate, state, run: Run) -> None:
    if not resource.signer or not state.host_key:
        host.log(
            run.tag(f"{resource.id}: no CA key to sign with (ssh.host_ca_key_file): see verify")
        )
        return
    identity = run.info.name if not run.info.name.startswith("@") else run.info.hostname
    certificate = sign_host_key(resource, state.host_key, identity)
    managed_file(
        name=run.tag(f"{resource.path} (signed by the CA here, for this host's names)"),
        desired=ManagedFile(resource.path, certificate, mode=0o644),
        current=None,
    )
    run.changed_paths.add(resource.path)
    for unit in resource.units:
        run.restart(unit, "its host certificate changed")


@converge.register
def _file(resource: ManagedFile, state, run: Run) -> None:
    run.changed_paths.add(resource.path)
    if resource.path.startswith("/etc/apt/"):
        run.repos_changed = True
    if not resource.present:
        remove_path(name=run.tag(f"{resource.path} absent"), path=resource.path)
    elif resource.guard == "sshd":
        if run.local:  # no SSH connection of ours to prove: sshd -t, then reload (not in an image)
            how = "sshd -t" if run.starts_nothing else "sshd -t, reload"
        else:
            how = "sshd -t, reload, fresh login"
        guarded_config(
            name=run.tag(f"{resource.path} ({how})"),
            desired=resource,
            current=state,
            login_timeout=run.login_timeout,
            reload=not run.starts_nothing,
            probe=not run.local,
        )
    else:
        managed_file(name=run.tag(resource.path), desired=resource, current=state)
    signal = resource.present and resource.reloads_only(state)
    for unit in resource.reload:
        (run.reload if signal else run.restart)(unit, f"{resource.path} changed")
    if resource.daemon_reload:
        systemd.daemon_reload(name=run.tag(f"reload systemd ({resource.path} changed)"))


@converge.register
def _directory(resource: Directory, state, run: Run) -> None:
    run.changed_paths.add(resource.path)
    files.directory(
        name=run.tag(f"{resource.path} {resource.mode:04o} {resource.user}:{resource.group}"),
        path=resource.path,
        user=resource.user,
        group=resource.group,
        mode=f"{resource.mode:o}",
    )


@converge.register
def _mode(resource: Mode, state, run: Run) -> None:
    if state is None:
        return  # required and missing: whatever creates it is another resource's job
    shell_quoted(
        name=run.tag(f"{resource.path} at most {resource.max_mode:04o}"),
        command=["chmod", f"{resource.target_mode(state):o}", resource.path],
    )
    shell_quoted(
        name=run.tag(f"{resource.path} owned by {resource.user}:{resource.group}"),
        command=["chown", f"{resource.user}:{resource.group}", resource.path],
    )


@converge.register
def _setuid(resource: NoSetuid, state, run: Run) -> None:
    shell_quoted(
        name=run.tag(f"no setuid/setgid bit on {resource.path}"),
        command=["chmod", "u-s,g-s", resource.path],
    )


def _lock_wait(run: Run) -> int:
    return run.settings.deploy.apt_lock_wait_seconds


def _apt_options(run: Run) -> str:
    """apt waits for dpkg's lock (another apt, unattended-upgrades) instead of failing at once,
    and retries a download a few times before giving up on the proxy or mirror."""
    return f"-o DPkg::Lock::Timeout={_lock_wait(run)} -o Acquire::Retries=3"


def refresh_lists(run: Run) -> None:
    """apt-get update, retried while its lock is held or the proxy fails, for at most
    deploy.apt_lock_wait_seconds; then the host fails with apt's own words (which name the
    proxy or mirror that did not answer)."""
    wait = _lock_wait(run)
    server.shell(
        name=run.tag("refresh apt package lists"),
        commands=[
            f"deadline=$(( $(date +%s) + {wait} )); "
            "until timeout 90 apt-get update -q -o Acquire::Retries=3; do "
            '[ "$(date +%s)" -lt "$deadline" ] || exit 1; '
            "echo 'cci-harden: apt-get update failed; trying again in 10 s' >&2; sleep 10; done"
        ],
    )


def install_packages(packages: list[Package], run: Run) -> None:
    """One apt transaction for a control's missing packages; lists refreshed only when needed
    (once per run, and again after a repository this run changed), bounded and retried."""
    if not run.lists_refreshed or (run.repos_changed and any(p.fresh_lists for p in packages)):
        run.lists_refreshed, run.repos_changed = True, False
        refresh_lists(run)
    apt.packages(
        name=run.tag(f"install {', '.join(p.spec for p in packages)}"),
        packages=[p.spec for p in packages],
        no_recommends=True,
        extra_install_args=_apt_options(run),
    )
    for package in packages:
        for unit in package.reload:
            run.restart(unit, f"package {package.name} changed")


def remove_packages(names: list[str], run: Run, why: str = "") -> None:
    apt.packages(
        name=run.tag(f"remove {', '.join(names)}{why}"),
        packages=names,
        present=False,
        extra_uninstall_args=_apt_options(run),
    )


# dpkg's third status letter R (reinstall required) or second H (half-installed): what a kill
# during unpacking leaves; `dpkg --configure -a` cannot finish those, only a reinstall can
_NEEDS_REINSTALL = (
    "dpkg-query -W -f='${db:Status-Abbrev} ${Package}\\n' 2>/dev/null | "
    'awk \'substr($0,2,1)=="H" || substr($0,3,1)=="R" {print $NF}\' | '
    "grep -E '^[a-z0-9][a-z0-9.+-]*$' || true"
)


@converge.register
def _package_system(resource: PackageSystem, state, run: Run) -> None:
    """Finish what an interrupted run left: dpkg's pending configuration, a reinstall of what was
    cut off mid-unpack, then apt's repair of dependencies; each waits a bounded time for a lock
    another process holds."""
    wait = _lock_wait(run)
    apt_get = f"apt-get -y -q {_apt_options(run)} -o Dpkg::Options::=--force-confold"
    server.shell(
        name=run.tag("finish an interrupted dpkg run (configure, reinstall, repair)"),
        commands=[
            "export DEBIAN_FRONTEND=noninteractive; "
            f"deadline=$(( $(date +%s) + {wait} )); errors=$(mktemp); "
            'until dpkg --force-confold --configure -a 2>"$errors"; do '
            'if grep -qi lock "$errors" && [ "$(date +%s)" -lt "$deadline" ]; then '
            "echo 'cci-harden: dpkg is locked by another process; waiting' >&2; sleep 5; "
            'else cat "$errors" >&2; break; fi; done; rm -f "$errors"',
            f"export DEBIAN_FRONTEND=noninteractive; broken=$({_NEEDS_REINSTALL}); "
            f'if [ -n "$broken" ]; then {apt_get} install --reinstall $broken; fi',
            "DEBIAN_FRONTEND=noninteractive dpkg --force-confold --configure -a",
            f"DEBIAN_FRONTEND=noninteractive {apt_get} -f install",
        ],
    )


@converge.register
def _staged_files(resource: StagedFiles, state, run: Run) -> None:
    for path in state:
        remove_path(name=run.tag(f"{path}: left by an interrupted run"), path=path)


@converge.register
def _package(resource: Package, state, run: Run) -> None:
    if resource.present:
        install_packages([resource], run)
    else:
        remove_packages([resource.name], run)


@converge.register
def _service(resource: Service, state, run: Run) -> None:
    """Services are settled at the end (see ``settle_services``); nothing to do in place."""


@converge.register
def _sysctl(resource: Sysctl, state, run: Run) -> None:
    for path, value in resource.overriding(state):
        # Another file wins at boot: its line is kept as a comment saying why.
        files.line(
            name=run.tag(f"{resource.name} no longer overridden by {path} ({value})"),
            path=path,
            line=rf"^[[:space:]]*-\{{0,1\}}{resource.name.replace('.', '[.]')}[[:space:]]*=.*$",
            # nothing read from the host goes into the sed script: the line is replaced whole
            replace=f"# {resource.name}: disabled by cci-harden ({run.control_id}), see "
            f"{resource.file}",
        )
    if state.access == "rw" and state.runtime != resource.value:
        server.sysctl(
            name=run.tag(f"{resource.name} = {resource.value} now"),
            key=resource.name,
            value=int(resource.value) if resource.value.lstrip("-").isdigit() else resource.value,
        )


@converge.register
def _config_line(resource: ConfigLine, state, run: Run) -> None:
    files.line(
        name=run.tag(f"{resource.path} {resource.name} {resource.value}"),
        path=resource.path,
        # POSIX basic regex: pyinfra's grep and sed both read it the same way
        line=rf"^#*{resource.name}[[:space:]]\{{1,\}}[^[:space:]]\{{1,\}}[[:space:]]*$",
        replace=f"{resource.name}\t{resource.value}",
    )


@converge.register
def _accounts(resource: SystemAccounts, state, run: Run) -> None:
    for name in resource.with_shell(state):
        shell_quoted(
            name=run.tag(f"system account {name} gets no login shell"),
            command=["usermod", "-s", resource.shell, name],
        )
    for name in resource.unlocked(state):
        shell_quoted(
            name=run.tag(f"system account {name}: password locked"),
            command=["usermod", "-L", name],
        )


@converge.register
def _audit(resource: AuditRules, state, run: Run) -> None:
    if run.info.in_container:
        return  # auditd cannot load rules in a container; the file waits for a real host
    server.shell(
        name=run.tag(f"load the audit rules of {resource.rules_file}"),
        commands=["augenrules --load"],
    )


@converge.register
def _nft(resource: NftTable, state, run: Run) -> None:
    run.restart(resource.unit, f"table cci_{resource.stem} drifted")  # one nft -f: a reload


@converge.register
def _docker_runtime(resource: DockerRuntime, state, run: Run) -> None:
    # a dockerd in another cgroup mode than the kernel will boot is set right by the reboot
    # CCI-NMD-08 asks for, not by a restart that would kill its builds
    if resource.restart_repairs(state):
        run.restart("docker", "dockerd runs with another configuration")


@converge.register
def _release(resource: NomadRelease, state, run: Run) -> None:
    release(
        name=run.tag(f"Nomad {resource.version}: signature, checksum, install"),
        base_url=resource.base_url,
        version=resource.version,
        arch=resource.arch,
        fingerprint=resource.fingerprint,
    )
    run.restart("nomad", "its binary changed")


@converge.register
def _kernel_cmdline(resource: KernelCmdline, state, run: Run) -> None:
    """The GRUB drop-in, then update-grub; the new command line runs from the next boot, which
    the rollout makes after draining the host (the plain deploy never reboots)."""
    if resource.configured(state):
        return  # only the running command line differs: the reboot is the rollout's
    run.changed_paths.add(resource.dropin)
    if resource.content:
        managed_file(
            name=run.tag(f"{resource.dropin} ({' '.join(resource.wanted)})"),
            desired=ManagedFile(resource.dropin, resource.content, dir_mode=0o755),
            current=None,
        )
    else:
        remove_path(name=run.tag(f"{resource.dropin} absent"), path=resource.dropin)
    if state.update_grub:
        server.shell(name=run.tag("update-grub (kernel command line)"), commands=["update-grub"])
    if not run.info.in_container:
        logger.warning(
            f"{host.print_prefix}{run.tag('')}the kernel command line changes at the next boot "
            f"(cgroup {resource.cgroup}): `cci-harden rollout` drains the host and reboots it"
        )


@converge.register
def _host_size(resource: HostSize, state, run: Run) -> None:
    refuse(name=run.tag("host size fits a Nomad client"), reason=str(resource.problem))


@converge.register
def _supported_os(resource: SupportedOs, state, run: Run) -> None:
    refuse(name=run.tag("a distribution the toolkit is tested on"), reason=str(resource.problem))


@converge.register
def _manifest(resource: Manifest, state, run: Run) -> None:
    stale = resource.stale(state)
    files_gone = [e for e in stale if e.kind == ManagedFile.kind]
    packages_gone = [e for e in stale if e.kind == Package.kind]
    for entry in files_gone:
        remove_path(
            name=run.tag(f"remove {entry.key} ({entry.control} no longer applies)"), path=entry.key
        )
    if packages_gone:
        names = sorted(e.key for e in packages_gone)
        controls = ", ".join(sorted({e.control for e in packages_gone}))
        remove_packages(names, run, f" ({controls} no longer applies)")
    # a daemon that stays installed must stop using a removed file (rsyslog the forwarding of
    # CCI-OS-08 when rsyslog was there before); one removed with its package needs nothing
    units = list(dict.fromkeys(unit for e in files_gone for unit in e.reload))
    for unit in host.loop([] if run.starts_nothing else units):
        word = shlex.quote(unit)
        server.shell(
            name=run.tag(f"restart {unit} if it is still installed (its files were removed)"),
            commands=[
                f"if systemctl cat -- {word} >/dev/null 2>&1; then "
                f"systemctl try-restart -- {word}; fi"
            ],
        )
    if resource.needs_write(state):
        managed_file(
            name=run.tag(f"{resource.path} (what this deploy manages)"),
            desired=ManagedFile(resource.path, resource.content(), mode=0o644, dir_mode=0o755),
            current=None,
        )


def units_of(plans) -> list[str]:
    """Every unit a plan may start or restart, in a fixed order: the same on every host, so a
    unit's operations are the same operations on every host (each kind names its units)."""
    units: list[str] = []
    for plan in plans:
        for resource in plan.resources:
            units += [u for u in resource.units if u not in units]
    return units


def settle_services(
    services: list[tuple[str, Service, Any]], run: Run, universe: list[str]
) -> dict[str, str]:
    """Per unit, once, after every file: enable/start what should be, restart what changed.

    A restart is ``systemctl restart``, which also starts a unit that is down, so a daemon a
    package started in this run with its default configuration picks up ours. Returns the
    declared services left as they are, with why.
    """
    left: dict[str, str] = {}
    declared: dict[str, tuple[str, Service | None, Any]] = {
        svc.unit: (control_id, svc, state) for control_id, svc, state in services
    }
    extra = [u for u in [*declared, *run.restarts, *run.reloads] if u not in universe]
    for unit in host.loop([*universe, *extra]):
        if unit not in declared and unit not in run.restarts and unit not in run.reloads:
            continue
        control_id, service, state = declared.get(unit, ("", None, None))
        tag = f"[{control_id}] " if control_id else ""
        if service is not None and not service.container_ok and run.info.in_container:
            left[service.id] = "not run in a container (ConditionVirtualization)"
            continue
        if service is not None and service.enabled == "masked":
            if service.needs_enable(state) or service.needs_start(state):
                shell_quoted(
                    name=f"{tag}{unit} masked", command=["systemctl", "mask", "--now", unit]
                )
            else:
                left[service.id] = "as desired"
            continue
        unmask = service is not None and state.enabled == "masked"
        if unmask:
            # someone masked it: unmask first, or neither enable nor start can work
            shell_quoted(name=f"{tag}{unit} unmasked", command=["systemctl", "unmask", unit])
        restart = unit in run.restarts and (service is None or service.running is not False)
        reload = unit in run.reloads and not restart and (service is None or service.running)
        enable = service is not None and service.needs_enable(state)
        start = service is not None and service.needs_start(state) and not restart
        if run.starts_nothing:  # an image: enabled units start at the instance's first boot
            restart = start = reload = False
        if service is not None and not (enable or start or reload or restart or unmask):
            left[service.id] = "as desired"
        # at first boot this deploy runs inside a unit ordered before Nomad: waiting for a job
        # of a later unit would wait for ourselves, so starts are queued (--no-block)
        queued = start and run.queues_starts and service is not None and service.running is True
        if service is not None and (enable or (start and not queued)):
            what = service.describe().split(" ", 2)[-1]
            if run.starts_nothing:
                what = "enabled (starts at first boot)"
            systemd.service(
                name=f"{tag}{unit} {what}",
                service=unit,
                running=service.running if start and not queued else None,
                enabled=None if not enable else service.enabled == "enabled",
            )
        if queued:
            shell_quoted(
                name=f"{tag}{unit} started (queued until first boot is done)",
                command=["systemctl", "start", "--no-block", unit],
            )
        no_block = " --no-block" if run.queues_starts else ""
        if reload:
            cause, why = run.reloads[unit]
            # a unit that is down is started instead: it reads the new file as it starts
            server.shell(
                name=f"[{cause}] reload {unit} ({why})",
                commands=[f"systemctl reload-or-restart{no_block} {shlex.quote(unit)}"],
            )
        if restart:
            cause, why = run.restarts[unit]
            # a unit that hit its start limit (restarted often by other hands) would refuse
            # this one restart the change needs; the limit still stops a real crash loop
            commands = [
                f"systemctl reset-failed {shlex.quote(unit)}",
                f"systemctl restart{no_block} {shlex.quote(unit)}",
            ]
            if unit == "docker" and not run.queues_starts:
                # a reload first turns live-restore on in the running daemon (it is in the new
                # daemon.json), so containers that can outlive the restart do
                commands.insert(0, "systemctl reload docker 2>/dev/null || true")
            server.shell(name=f"[{cause}] restart {unit} ({why})", commands=commands)
    return left
