#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, if any is missing (as root):
# iproute2 and iputils-ping for cross-checks; nftables and iptables for ipMasq/macspoofchk;
# containernetworking-plugins, the reference plugins of the differential tests; util-linux
# for nsenter and unshare; golang-go and golang-github-appc-cni-dev for the libcni driver
# (tests/libcni.rs); podman, runc, busybox-static and tar for tests/podman.rs.
# With --list, prints the list and installs nothing.
set -euo pipefail

packages=(iproute2 iputils-ping nftables iptables containernetworking-plugins util-linux
    ca-certificates golang-go golang-github-appc-cni-dev podman runc busybox-static tar)
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
