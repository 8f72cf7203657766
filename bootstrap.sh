#!/usr/bin/env bash
# Set up this machine for cci-harden and run the main job against the local test bed:
#   Debian packages, a virtualenv with the package, three booted test hosts,
#   then `pyinfra inventories/testbed deploys/nomad.py`.
# With --no-deploy it stops after the installs (what CI needs before running the tests);
# with --toolkit-only it installs the virtualenv alone (an admin machine: no root needed).
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(
  debootstrap systemd-container apt-cacher-ng iproute2 openssh-client mount gnupg
  chromium fonts-dejavu-core qemu-system-x86 qemu-utils fdisk
)

install_toolkit() {
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # Exact versions with hashes (requirements.lock, made by `uv pip compile --generate-hashes`
  # from pyproject.toml), then the package itself without resolving anything again.
  .venv/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements.lock
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
}

# --toolkit-only: the virtualenv alone, for an admin machine (no root, no test bed)
if [ "${1:-}" = "--toolkit-only" ]; then
  install_toolkit
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "bootstrap.sh: run as root (the test bed creates namespaces, mounts and containers)" >&2
  exit 2
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap.sh: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! python3 -m venv --help >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
install_toolkit

[ "${1:-}" = "--no-deploy" ] && exit 0

export PYINFRA_PROGRESS=off
.venv/bin/cci-harden testbed up --hosts 3
.venv/bin/pyinfra -y inventories/testbed deploys/nomad.py
