#!/usr/bin/env bash
# Quick-start demo: build meta-cni, install it into a temporary CNI bin dir, and call it as a
# container runtime would, with the sample netconf (samples/netconf/standalone.conflist) and
# the sample NADs (samples/nads, as its nadDir: no cluster needed). Two pods get three
# networks each: eth0 on the cluster network (pod-network), net1 on data-net and net2 on
# ctrl-net (a bridge + policy + loopback chain: the policy delegate lets only ping and TCP
# 8080 in on net2; loopback brings lo up). pod-b selects its networks with the annotation's
# JSON form, asking for a fixed address and MAC on net1. The demo prints the merged result,
# network-status and `meta-cni inspect`, pings pod-b from pod-a on every network, shows the
# policy dropping TCP port 9 on net2 while net1 refuses it, then starts meta-cni-daemon
# (thick mode) and CHECKs and DELs through it (the plugin as its shim), prints the daemon's
# request counts from its /metrics, and shows nothing is left.
#
# Everything happens in network namespaces the demo makes (a "node" holding the bridges and
# host veths, and the two pods), removed on exit even on failure; the machine's own namespace
# is not touched. host-local keeps its reservations where it always does,
# /var/lib/cni/networks/<network>; what the demo created there is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
command -v jq >/dev/null || need+=(jq)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cargo build --release -p meta-cni --quiet

tmp=$(mktemp -d)
bin_dir="$tmp/bin"
cache_dir="$tmp/cache"
node="meta-cni-demo-node-$$"
pods=(pod-a pod-b)
declare -A id # pod -> container ID, also its netns name
for pod in "${pods[@]}"; do id[$pod]="meta-cni-demo-$pod-$$"; done
ipam_root=/var/lib/cni/networks
daemon_socket="" # set once meta-cni-daemon runs: the calls then go through it
daemon_pid=""
made=() # directories this demo creates outside $tmp, parents first: removed on exit
for dir in /var/lib/cni "$ipam_root" "$ipam_root"/{pod-network,data-net,ctrl-net}; do
    [ -e "$dir" ] || made+=("$dir")
done

# The networks each pod selects: pod-a keeps the sample netconf's; pod-b uses the JSON form.
declare -A networks=(
    [pod-b]='[{"name": "data-net", "interface": "net1",
               "ips": ["10.20.1.200/24"], "mac": "02:00:00:00:20:01"},
              {"name": "ctrl-net", "namespace": "default", "interface": "net2"}]'
)

# netconf POD [PREV_RESULT]: the sample netconf's plugin, as a runtime hands it over (with
# the list's name and cniVersion), pointed at the sample NADs and this demo's directories.
netconf() {
    jq -c --arg nads "$PWD/samples/nads" --arg cache "$cache_dir" --arg bin "$bin_dir" \
        --argjson networks "${networks[$1]:-null}" --argjson prev "${2:-null}" \
        --arg socket "$daemon_socket" '
        .plugins[0] + {cniVersion, name, nadDir: $nads, cniDir: $cache, binDir: $bin}
        | if $networks then .networks = $networks else . end
        | if $socket != "" then .daemonSocket = $socket else . end
        | if $prev then .prevResult = $prev else . end' samples/netconf/standalone.conflist
}

# No cluster, even when the demo runs in a pod: without a kubeconfig, meta-cni (as Multus)
# takes a pod's service account when KUBERNETES_SERVICE_HOST is set.
standalone=(-u KUBERNETES_SERVICE_HOST -u KUBERNETES_SERVICE_PORT)

# cni VERB POD [PREV_RESULT]: one call of the meta plugin, from the node namespace.
cni() {
    netconf "$2" "${3:-}" | ip netns exec "$node" env "${standalone[@]}" CNI_COMMAND="$1" \
        CNI_CONTAINERID="${id[$2]}" CNI_NETNS="/run/netns/${id[$2]}" CNI_IFNAME=eth0 \
        CNI_PATH="$bin_dir" CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=$2" \
        "$bin_dir/meta-cni"
}

cleanup() {
    # What a runtime does after a failure: DEL every pod (DEL is idempotent), so no address
    # stays reserved; then remove the namespaces and what the demo created. With the daemon
    # gone the plugin serves the DELs itself.
    if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" || true; fi
    if [ -e "/run/netns/$node" ]; then
        for pod in "${pods[@]}"; do cni DEL "$pod" >/dev/null 2>&1 || true; done
    fi
    for ns in "$node" "${id[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$tmp"
    for ((i = ${#made[@]} - 1; i >= 0; i--)); do
        # Only what nothing else put anything in since.
        rm -f "${made[i]}"/{lock,last_reserved_ip.*} 2>/dev/null || true
        rmdir "${made[i]}" 2>/dev/null || true
    done
}
trap cleanup EXIT

mkdir -p "$bin_dir"
install -m 0755 target/release/meta-cni "$bin_dir/meta-cni"
for plugin in loopback bridge host-local policy meta-cni-daemon; do
    ln -s meta-cni "$bin_dir/$plugin"
done
for ns in "$node" "${id[@]}"; do ip netns add "$ns"; done

declare -A results
for pod in "${pods[@]}"; do
    echo "== ADD $pod: $(netconf "$pod" | jq -c .networks)"
    results[$pod]=$(cni ADD "$pod")
    echo "merged result:"
    jq -c '.interfaces[]' <<<"${results[$pod]}"
    jq -c '.ips[]' <<<"${results[$pod]}"
    cache_file="$cache_dir/${id[$pod]}+eth0.meta-cni.json"
    if jq -e 'has("networkStatus")' "$cache_file" >/dev/null 2>&1; then
        echo "network-status:"
        jq -c '.networkStatus[]' "$cache_file"
    fi
    ip -n "${id[$pod]}" -br addr
done

echo "== meta-cni inspect (the cache, as an operator reads it)"
"$bin_dir/meta-cni" inspect --cni-dir "$cache_dir"

addr_of() { # POD IFNAME -> its IPv4 address, without the prefix length
    ip -n "${id[$1]}" -4 -o addr show dev "$2" | awk '{print $4}' | cut -d/ -f1
}
echo "== connectivity: pod-a -> pod-b on every network"
for ifname in eth0 net1 net2; do
    peer=$(addr_of pod-b "$ifname")
    ip netns exec "${id[pod-a]}" ping -c 1 -W 2 -I "$ifname" "$peer" >/dev/null
    echo "$ifname: $peer ok"
done

echo "== policy on ctrl-net (net2): ping passed above; TCP port 9 is dropped there, refused on net1"
tcp_probe() { # POD IFNAME PORT -> "dropped" (no answer in 1 s), "refused" or "open"
    local peer rc
    peer=$(addr_of pod-b "$2")
    rc=0
    ip netns exec "${id[$1]}" timeout 1 bash -c "exec 3<>/dev/tcp/$peer/$3" 2>/dev/null || rc=$?
    case $rc in 0) echo open ;; 124) echo dropped ;; *) echo refused ;; esac
}
net2=$(tcp_probe pod-a net2 9)
net1=$(tcp_probe pod-a net1 9)
echo "net2 (policy): port 9 $net2; net1 (no policy): port 9 $net1"
[ "$net2" = dropped ] && [ "$net1" = refused ]
ip netns exec "${id[pod-b]}" nft list table inet cni_policy | grep -E "chain|jump|accept|drop" | sed 's/^/  /'

echo "== thick mode: meta-cni-daemon in the node; CHECK and DEL below go through it"
ip -n "$node" link set lo up # its /metrics listens on the node's loopback
daemon_socket="$tmp/daemon/daemon.sock"
ip netns exec "$node" env "${standalone[@]}" "$bin_dir/meta-cni-daemon" --socket "$daemon_socket" \
    --metrics-address 127.0.0.1:9695 2>"$tmp/daemon.log" &
daemon_pid=$!
for _ in $(seq 200); do [ -S "$daemon_socket" ] && break; sleep 0.05; done
[ -S "$daemon_socket" ] || { cat "$tmp/daemon.log"; exit 1; }
echo "listening on $daemon_socket"

echo "== CHECK"
for pod in "${pods[@]}"; do cni CHECK "$pod" "${results[$pod]}"; done
echo ok

echo "== DEL"
for pod in "${pods[@]}"; do cni DEL "$pod"; done
echo ok

echo "== the daemon's /metrics: the calls it served"
metrics=$(ip netns exec "$node" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9695
    printf "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3; cat <&3')
grep '^meta_cni_daemon_requests_total' <<<"$metrics" | sed 's/^/  /'
# Both CHECKs and both DELs were the daemon's (the shim would have served them itself, and
# said so in its log, had the daemon been down).
for verb in CHECK DEL; do
    grep -qx "meta_cni_daemon_requests_total{verb=\"$verb\",result=\"ok\"} 2" <<<"$metrics"
done
kill -TERM "$daemon_pid"
wait "$daemon_pid"
daemon_pid=""

echo "== left behind"
left=0
for pod in "${pods[@]}"; do
    links=$(ip -n "${id[$pod]}" -o link show | awk -F': ' '$2 != "lo"')
    if [ -n "$links" ]; then echo "$pod links: $links"; left=1; fi
done
veths=$(ip -n "$node" -o link show type veth)
if [ -n "$veths" ]; then echo "host veths: $veths"; left=1; fi
# A reservation is a file named after the address, holding the container ID.
reserved=$(grep -rlsE "^(${id[pod-a]}|${id[pod-b]})\s*$" \
    "$ipam_root/pod-network" "$ipam_root/data-net" "$ipam_root/ctrl-net" || true)
if [ -n "$reserved" ]; then echo "reservations: $reserved"; left=1; fi
# The cache dir's one lock file (shared by every container) stays.
# So do spares: files DEL emptied and keeps for the next ADD (no inode made per pod).
cached=$(find "$cache_dir" -type f ! -name meta-cni.lock ! -name '.spare.*' 2>/dev/null)
if [ -n "$cached" ]; then echo "cache files: $cached"; left=1; fi
if [ "$left" != 0 ]; then exit 1; fi
echo "nothing: no pod links but lo, no host veths, no reservations, no cache files"
