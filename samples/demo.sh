#!/usr/bin/env bash
# Quick-start demo: build meta-cni, install it into a temporary CNI bin dir, and run the
# loopback plugin through ADD, CHECK and DEL in a fresh network namespace, as a runtime
# would. Everything it makes is removed on exit, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v ip >/dev/null || { apt-get update -qq && apt-get install -y -qq iproute2 >/dev/null; }

cargo build --release -p meta-cni --quiet

bin_dir=$(mktemp -d)
ns="meta-cni-demo-$$"
cleanup() {
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$bin_dir"
}
trap cleanup EXIT

install -m 0755 target/release/meta-cni "$bin_dir/meta-cni"
ln -s meta-cni "$bin_dir/loopback"
ip netns add "$ns"

netconf='{"cniVersion":"1.1.0","name":"demo-lo","type":"loopback"}'
cni() {
    echo "$netconf" | env CNI_COMMAND="$1" CNI_CONTAINERID=demo CNI_NETNS="/run/netns/$ns" \
        CNI_IFNAME=lo CNI_PATH="$bin_dir" "$bin_dir/loopback"
}

echo "== lo in a fresh namespace:"
ip -n "$ns" -br addr show lo
echo "== ADD result:"
cni ADD
echo "== lo after ADD:"
ip -n "$ns" -br addr show lo
echo "== CHECK:" && cni CHECK && echo ok
echo "== DEL:" && cni DEL && echo ok
echo "== lo after DEL:"
ip -n "$ns" -br link show lo
