#!/usr/bin/env bash
# Installs what the test suite needs, if any of it is missing (as root).
#
# Debian packages: iproute2 and iputils-ping for cross-checks; nftables and iptables for
# ipMasq/macspoofchk; containernetworking-plugins, the reference plugins of the differential
# tests; util-linux for nsenter and unshare; golang-go and golang-github-appc-cni-dev for the
# libcni driver (tests/libcni.rs); podman, runc, busybox-static and tar for tests/podman.rs;
# python3 and python3-venv for the emulated cloud (conformance/emulator).
#
# The emulated cloud's Python packages (conformance/emulator/requirements.txt: moto[server]
# and its dependencies, every version pinned) go into a virtualenv, $META_CNI_TEST_VENV
# (default /opt/meta-cni-test-venv), which conformance/src/ec2_emulator.rs runs. It is made
# again only when requirements.txt changed since it was made.
#
# With --list, prints the Debian packages and installs nothing.
set -euo pipefail

packages=(iproute2 iputils-ping nftables iptables containernetworking-plugins util-linux
    ca-certificates golang-go golang-github-appc-cni-dev podman runc busybox-static tar
    python3 python3-venv)
if [ "${1:-}" = --list ]; then
    echo "${packages[@]}"
    exit 0
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The virtualenv, from Debian's Python (not whatever `python3` a user's PATH finds first, e.g.
# pyenv's), so that it is the same on every machine and outlives changes to PATH.
venv=${META_CNI_TEST_VENV:-/opt/meta-cni-test-venv}
requirements="$(cd "$(dirname "$0")" && pwd)/emulator/requirements.txt"
stamp="$venv/.requirements.sha256"
want=$(sha256sum <"$requirements")
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$requirements"
    echo "$want" >"$stamp"
fi
