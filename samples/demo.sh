#!/usr/bin/env bash
# Quick-start demo: build meta-cni, install it into a temporary CNI bin dir, and give two
# pods three interfaces each (lo, eth0 on one bridge network, net1 on another) with the
# bundled loopback, bridge and host-local plugins, as a runtime would call them. It proves
# connectivity between the pods on both networks, CHECKs, DELs, and shows nothing is left.
#
# Everything happens in namespaces the demo makes (a "node" and two pods), removed on exit,
# even on failure; the machine's own namespace is not touched.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cargo build --release -p meta-cni --quiet

tmp=$(mktemp -d)
bin_dir="$tmp/bin"
data_dir="$tmp/ipam"
node="meta-cni-demo-node-$$"
pods=("meta-cni-demo-a-$$" "meta-cni-demo-b-$$")
cleanup() {
    for ns in "$node" "${pods[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$bin_dir"
install -m 0755 target/release/meta-cni "$bin_dir/meta-cni"
for plugin in loopback bridge host-local; do ln -s meta-cni "$bin_dir/$plugin"; done
for ns in "$node" "${pods[@]}"; do ip netns add "$ns"; done

lo_conf='{"cniVersion":"1.1.0","name":"demo-lo","type":"loopback"}'
# network name, bridge, subnet
bridge_conf() {
    printf '{"cniVersion":"1.1.0","name":"%s","type":"bridge","bridge":"%s","isGateway":true,
      "ipam":{"type":"host-local","subnet":"%s","dataDir":"%s"}}' "$1" "$2" "$3" "$data_dir"
}
data_conf=$(bridge_conf demo-data br-data 10.88.1.0/24)
ctrl_conf=$(bridge_conf demo-ctrl br-ctrl 10.88.2.0/24)

# cni VERB POD IFNAME PLUGIN NETCONF: one plugin call, run in the node namespace.
cni() {
    echo "$5" | ip netns exec "$node" env CNI_COMMAND="$1" CNI_CONTAINERID="$2" \
        CNI_NETNS="/run/netns/$2" CNI_IFNAME="$3" CNI_PATH="$bin_dir" "$bin_dir/$4"
}
with_prev() { # NETCONF RESULT -> the netconf with the result as prevResult
    echo "${1%\}},\"prevResult\":$2}"
}

declare -A results
for pod in "${pods[@]}"; do
    echo "== ADD $pod"
    cni ADD "$pod" lo loopback "$lo_conf" >/dev/null
    results[$pod/eth0]=$(cni ADD "$pod" eth0 bridge "$data_conf")
    results[$pod/net1]=$(cni ADD "$pod" net1 bridge "$ctrl_conf")
    echo "${results[$pod/eth0]}"
    echo "${results[$pod/net1]}"
    ip -n "$pod" -br addr
done

addr_of() { # POD IFNAME -> address without prefix
    ip -n "$1" -4 -o addr show dev "$2" | awk '{print $4}' | cut -d/ -f1
}
echo "== connectivity between the pods"
for ifname in eth0 net1; do
    peer=$(addr_of "${pods[1]}" "$ifname")
    ip netns exec "${pods[0]}" ping -c 1 -W 2 "$peer" >/dev/null
    echo "${pods[0]} -> ${pods[1]} on $ifname ($peer): ok"
done

echo "== CHECK"
for pod in "${pods[@]}"; do
    cni CHECK "$pod" eth0 bridge "$(with_prev "$data_conf" "${results[$pod/eth0]}")"
    cni CHECK "$pod" net1 bridge "$(with_prev "$ctrl_conf" "${results[$pod/net1]}")"
done
echo ok

echo "== DEL"
for pod in "${pods[@]}"; do
    cni DEL "$pod" net1 bridge "$ctrl_conf"
    cni DEL "$pod" eth0 bridge "$data_conf"
    cni DEL "$pod" lo loopback "$lo_conf"
done
echo ok

echo "== left behind: pod links, host veths, reservations"
for pod in "${pods[@]}"; do ip -n "$pod" -br link; done
ip -n "$node" -br link | grep veth || echo "no host veths"
find "$data_dir" -type f ! -name lock ! -name 'last_reserved_ip.*' | grep . || echo "no reservations"
