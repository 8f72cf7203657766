"""The OS baseline's lists: sysctl keys, modules, packages, file modes, audit watches.

Kept apart from the controls so the lists read as data, each entry with the reason it is there
or the reason it is deliberately missing.
"""

from __future__ import annotations

# (key, value, source). dev-sec os-hardening / linux-baseline and CIS Debian, minus what breaks a
# Docker host, plus the Docker overlay at the end.
SYSCTL: tuple[tuple[str, str, str], ...] = (
    # network (per network namespace)
    ("net.ipv4.conf.all.accept_redirects", "0", "dev-sec sysctl-05, CIS 3.3.2"),
    ("net.ipv4.conf.default.accept_redirects", "0", "dev-sec sysctl-05, CIS 3.3.2"),
    ("net.ipv4.conf.all.secure_redirects", "0", "dev-sec sysctl-06, CIS 3.3.3"),
    ("net.ipv4.conf.default.secure_redirects", "0", "dev-sec sysctl-06, CIS 3.3.3"),
    ("net.ipv4.conf.all.send_redirects", "0", "dev-sec sysctl-07, CIS 3.3.1"),
    ("net.ipv4.conf.default.send_redirects", "0", "dev-sec sysctl-07, CIS 3.3.1"),
    ("net.ipv4.conf.all.accept_source_route", "0", "dev-sec sysctl-09, CIS 3.3.4"),
    ("net.ipv4.conf.default.accept_source_route", "0", "dev-sec sysctl-09, CIS 3.3.4"),
    ("net.ipv4.conf.all.log_martians", "1", "dev-sec sysctl-17, CIS 3.3.5"),
    ("net.ipv4.conf.default.log_martians", "1", "dev-sec sysctl-17, CIS 3.3.5"),
    ("net.ipv4.conf.all.rp_filter", "1", "dev-sec sysctl-01, CIS 3.3.7"),
    ("net.ipv4.conf.default.rp_filter", "1", "dev-sec sysctl-01, CIS 3.3.7"),
    ("net.ipv4.icmp_echo_ignore_broadcasts", "1", "dev-sec sysctl-03, CIS 3.3.6"),
    ("net.ipv4.icmp_ignore_bogus_error_responses", "1", "dev-sec sysctl-04, CIS 3.3.6"),
    ("net.ipv4.tcp_syncookies", "1", "dev-sec sysctl-14, CIS 3.3.8"),
    ("net.ipv4.tcp_rfc1337", "1", "toolkit: TIME-WAIT assassination"),
    ("net.ipv6.conf.all.accept_redirects", "0", "dev-sec sysctl-25, CIS 3.3.2"),
    ("net.ipv6.conf.default.accept_redirects", "0", "dev-sec sysctl-25, CIS 3.3.2"),
    ("net.ipv6.conf.all.accept_source_route", "0", "dev-sec sysctl-09, CIS 3.3.4"),
    ("net.ipv6.conf.default.accept_source_route", "0", "dev-sec sysctl-09, CIS 3.3.4"),
    # Not set: net.ipv6.conf.*.accept_ra=0 (dev-sec sysctl-19). Cloud VPCs hand out IPv6 routes
    # by router advertisement; turning it off cuts a dual-stack client off its network.
    # kernel (host-wide)
    ("kernel.randomize_va_space", "2", "dev-sec sysctl-31a, CIS 1.5.2"),
    ("kernel.kptr_restrict", "2", "dev-sec sysctl-kptr, Lynis KRNL-6000"),
    ("kernel.dmesg_restrict", "1", "dev-sec sysctl-dmesg, Lynis KRNL-6000"),
    ("kernel.yama.ptrace_scope", "1", "CIS 1.5.3: ptrace only of one's own descendants"),
    ("kernel.sysrq", "0", "dev-sec sysctl-30, Lynis KRNL-6000"),
    ("kernel.core_uses_pid", "1", "Lynis KRNL-6000"),
    ("kernel.unprivileged_bpf_disabled", "1", "Lynis KRNL-6000"),
    ("kernel.perf_event_paranoid", "3", "Lynis KRNL-6000"),
    ("net.core.bpf_jit_harden", "2", "Lynis KRNL-6000"),
    ("dev.tty.ldisc_autoload", "0", "Lynis KRNL-6000"),
    ("vm.mmap_min_addr", "65536", "dev-sec sysctl-mmap"),
    ("fs.suid_dumpable", "0", "dev-sec sysctl-31b, CIS 1.5.1"),
    ("fs.protected_hardlinks", "1", "Lynis KRNL-6000"),
    ("fs.protected_symlinks", "1", "Lynis KRNL-6000"),
    ("fs.protected_fifos", "2", "Lynis KRNL-6000"),
    ("fs.protected_regular", "2", "Lynis KRNL-6000"),
    # Docker-host overlay: what hardening profiles switch off and a Nomad client needs.
    ("net.ipv4.ip_forward", "1", "Docker: job containers reach the network through the host"),
    ("kernel.unprivileged_userns_clone", "1", "CircleCI: jobs create user namespaces"),
)

# Kernel modules never loaded on a Nomad client: unused filesystems and network protocols.
# Not listed, though hardening guides do: overlay, br_netfilter, veth, vxlan, nf_* and xt_*
# (Docker's networking and storage), squashfs (snap on Ubuntu hosts).
BLACKLISTED_MODULES: tuple[tuple[str, str], ...] = (
    ("cramfs", "CIS 1.1.1.1"),
    ("freevxfs", "CIS 1.1.1.2"),
    ("jffs2", "CIS 1.1.1.3"),
    ("hfs", "CIS 1.1.1.4"),
    ("hfsplus", "CIS 1.1.1.5"),
    ("udf", "CIS 1.1.1.7"),
    ("usb-storage", "CIS 1.1.10: no removable media on a CI host"),
    ("firewire-core", "Lynis STRG-1846"),
    ("dccp", "CIS 3.4.1, Lynis NETW-3200"),
    ("sctp", "CIS 3.4.2, Lynis NETW-3200"),
    ("rds", "CIS 3.4.3, Lynis NETW-3200"),
    ("tipc", "CIS 3.4.4, Lynis NETW-3200"),
)

# Packages a Nomad client never needs (dev-sec os-hardening's list, CIS 2.2/2.3).
UNWANTED_PACKAGES: tuple[str, ...] = (
    "telnet",
    "telnetd",
    "inetutils-telnetd",
    "rsh-client",
    "rsh-server",
    "rsh-redone-client",
    "nis",
    "talk",
    "talkd",
    "tftp",
    "tftpd-hpa",
    "xinetd",
    "avahi-daemon",
    "cups",
    "rpcbind",
    "ldap-utils",
)

# (path, mode, owner, group). Directories (a trailing "/") are created if missing, since packages
# installed later in the same run add files to them; files are changed only where they exist (an
# empty /etc/sudoers made here would break a later install of sudo).
FILE_MODES: tuple[tuple[str, int, str, str], ...] = (
    ("/etc/passwd", 0o644, "root", "root"),
    ("/etc/group", 0o644, "root", "root"),
    ("/etc/shadow", 0o640, "root", "shadow"),
    ("/etc/gshadow", 0o640, "root", "shadow"),
    ("/etc/crontab", 0o600, "root", "root"),
    ("/etc/cron.d/", 0o700, "root", "root"),
    ("/etc/cron.hourly/", 0o700, "root", "root"),
    ("/etc/cron.daily/", 0o700, "root", "root"),
    ("/etc/cron.weekly/", 0o700, "root", "root"),
    ("/etc/cron.monthly/", 0o700, "root", "root"),
    ("/etc/ssh/sshd_config", 0o600, "root", "root"),
    ("/etc/sudoers", 0o440, "root", "root"),
    ("/etc/sudoers.d/", 0o750, "root", "root"),
)

# login.defs keys (dev-sec os-hardening, CIS 5.5). Password ageing applies to accounts created
# from now on; it never expires an existing account, so key-based administrators are not locked
# out. ENCRYPT_METHOD stays Debian 12's YESCRYPT, stronger than the SHA512 the guides name.
LOGIN_DEFS: tuple[tuple[str, str], ...] = (
    ("UMASK", "027"),
    ("PASS_MAX_DAYS", "365"),
    ("PASS_MIN_DAYS", "1"),
    ("PASS_WARN_AGE", "14"),
    ("LOGIN_RETRIES", "5"),
    ("LOGIN_TIMEOUT", "60"),
    ("DEFAULT_HOME", "no"),
    ("SHA_CRYPT_MIN_ROUNDS", "640000"),
)

# Setuid binaries nothing on a Nomad client uses (dev-sec's list, the ones Debian ships).
# Kept: sudo, su, passwd, mount/umount, newuidmap/newgidmap (user namespaces for jobs), and
# Docker's and Nomad's own helpers.
SETUID_REMOVED: tuple[str, ...] = (
    "/usr/bin/chfn",
    "/usr/bin/chsh",
    "/usr/bin/newgrp",
    "/usr/bin/at",
    "/usr/bin/rcp",
    "/usr/bin/rlogin",
    "/usr/bin/rsh",
    "/usr/bin/traceroute6.iputils",
    "/usr/sbin/pppd",
)
