"""What a control needs to know about a host: CPUs, memory, distribution, addresses.

The same command serves the deploy (as a pyinfra fact) and the verify stage (as a probe in the
snapshot), so both render a host's files from the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

# One value per line, in the order HostInfo.parse reads them. Shell builtins (read, while) where
# they do the job: this runs on every host at every deploy and verify.
COMMAND = "; ".join(
    [
        "nproc",
        'while read -r k v _; do [ "$k" = MemTotal: ] && { echo "$v"; break; }; done'
        " < /proc/meminfo",
        '(. /etc/os-release; echo "$ID $VERSION_ID ${VERSION_CODENAME:-unknown}")',
        'h=; read -r h < /proc/sys/kernel/hostname; echo "$h"',
        "(dpkg --print-architecture 2>/dev/null || uname -m)",
        # nominal clock: cpufreq's maximum where the kernel has it, else cpuinfo (VMs)
        "if read -r f 2>/dev/null < /sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq;"
        " then echo \"$f\"; else awk -F': ' '/^cpu MHz/ {printf \"%d\\n\", $2 * 1000; exit}'"
        " /proc/cpuinfo || echo 0; fi",
        'ns=; while read -r k v _; do [ "$k" = nameserver ] && ns="$ns$v "; done'
        ' 2>/dev/null < /etc/resolv.conf; echo "$ns"',
        # the first global address not on a Docker bridge
        'echo "$(ip -4 -o addr show scope global 2>/dev/null'
        ' | awk \'$2 !~ /^(docker|br-|veth)/ {split($4, a, "/"); print a[1]}\' | head -n1)"',
        # a container (the test bed's nspawn hosts) cannot load audit rules or set kernel sysctls
        "(systemd-detect-virt --container 2>/dev/null || true)",
    ]
)


@dataclass(frozen=True)
class HostInfo:
    cpus: int
    memory_mb: int
    os_id: str
    os_version: str
    hostname: str
    codename: str = "unknown"
    arch: str = "amd64"
    cpu_mhz: int = 0
    nameservers: tuple[str, ...] = ()
    primary_ipv4: str = ""
    name: str = ""  # the host's name in the inventory, set by the deploy and the verify stage
    # the address the inventory reaches it at (set likewise): unlike the facts above, the
    # operator's data, so it may go into what the operator's CA signs
    address: str = ""
    container: str = "none"  # systemd-detect-virt --container: "none" on a VM or bare metal

    @property
    def in_container(self) -> bool:
        return self.container not in ("", "none")

    @classmethod
    def parse(cls, lines: list[str]) -> HostInfo:
        values = [line.strip() for line in lines] + [""] * 9
        cpus, mem_kb, os_line, hostname, arch, khz, resolvers, address, container = values[:9]
        os_id, os_version, codename = ([*os_line.split(), "", "", ""])[:3]
        return cls(
            cpus=int(cpus),
            memory_mb=int(mem_kb) // 1024,
            os_id=os_id,
            os_version=os_version,
            hostname=hostname,
            codename=codename or "unknown",
            arch={"x86_64": "amd64", "aarch64": "arm64"}.get(arch, arch),
            # to the nearest 100 MHz: a VM's measured clock moves a little at every boot
            # (2600.4, then 2599.9), and the reservation (cores x clock) must not move with it
            cpu_mhz=round(int(khz or 0) / 100_000) * 100,
            nameservers=tuple(resolvers.split()),
            primary_ipv4=address,
            container=container or "none",
        )


# A typical host, for renders that must not depend on one host: planning the verify gather,
# checking that a template and the settings make a valid file.
STAND_IN = HostInfo(
    cpus=64,
    memory_mb=65536,
    os_id="debian",
    os_version="12",
    hostname="planning",
    codename="bookworm",
    arch="amd64",
    cpu_mhz=2000,
    nameservers=("192.0.2.53",),
    primary_ipv4="192.0.2.1",
)
