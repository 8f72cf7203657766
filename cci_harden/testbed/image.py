"""The test bed's base image: a minimal booted Debian, built once with debootstrap and cached.

Each host boots from an overlay on top of this image, so a host's changes never reach the cache and
``down`` can throw them away. The image is built in a temporary directory and renamed into place
only when complete, so an interrupted build never leaves a half-made cache behind.
"""

from __future__ import annotations

import fcntl
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from . import mirror
from .layout import BASE_PACKAGES, DEFAULT_RELEASE, Layout
from .system import run

MARKER = "etc/cci-testbed-image"
# Bump when _customise changes: a cached image is then customised again, without debootstrap.
REVISION = "3"


@contextmanager
def _lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _marker_text(release: str) -> str:
    return f"suite={release}\npackages={','.join(BASE_PACKAGES)}\nrevision={REVISION}\n"


def image_ready(layout: Layout, release: str = DEFAULT_RELEASE) -> bool:
    marker = layout.base_image(release) / MARKER
    return marker.is_file() and marker.read_text() == _marker_text(release)


def _debootstrapped(layout: Layout, release: str) -> bool:
    marker = layout.base_image(release) / MARKER
    return marker.is_file() and f"packages={','.join(BASE_PACKAGES)}\n" in marker.read_text()


def _customise(root: Path, sources: list[mirror.AptSource], release: str) -> None:
    """Make the image a template: no per-host identity, the machine's own apt sources."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/machine-id").write_text("")
    legacy = root / "etc/apt/sources.list"
    if legacy.exists():
        legacy.unlink()
    (root / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(mirror.render_deb822(sources))
    # A container has no consoles to serve; these units only slow the boot down.
    for unit in ("getty@tty1.service", "console-getty.service"):
        link = root / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    # revision 2 retried one unit after the cgroup race; hosts.wait_for_boot now handles any unit
    shutil.rmtree(root / "etc/systemd/system/systemd-user-sessions.service.d", ignore_errors=True)
    (root / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
    (root / MARKER).write_text(_marker_text(release))


def build_image(
    layout: Layout, release: str = DEFAULT_RELEASE, *, force: bool = False, log=print
) -> float:
    """Build the release's base image if it is missing; return the seconds it took (0 when
    cached)."""
    image = layout.base_image(release)
    with _lock(layout.cache_dir / f"base-{release}.lock"):
        if image_ready(layout, release) and not force:
            return 0.0
        if _debootstrapped(layout, release) and not force:
            _customise(image, mirror.debian_sources(release), release)
            return 0.0
        sources = mirror.debian_sources(release)
        main_mirror = mirror.debian_mirror(release, sources)
        staging = layout.cache_dir / f"base-{release}.partial"
        if staging.exists():
            shutil.rmtree(staging)
        log(f"building the base image with debootstrap ({release}); this takes about a minute")
        started = time.monotonic()
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                release,
                str(staging),
                main_mirror,
            ]
        )
        _customise(staging, sources, release)
        if image.exists():
            shutil.rmtree(image)
        staging.rename(image)
        return time.monotonic() - started
