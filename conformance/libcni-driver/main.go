// libcni-driver runs one network-list operation through libcni, the library cnitool and
// podman's CNI backend use, so the conformance suite can check a plugin against a real
// client: libcni's result cache, prevResult handling and version conversion, not ours.
//
// Usage:
//
//	libcni-driver <add|check|del|cached> -conflist FILE -id ID -netns PATH -ifname NAME \
//	    -path DIR[:DIR...] -cache-dir DIR [-args K=V;K=V] [-capability-args JSON]
//
// On success it prints the result JSON (add, cached) or nothing (check, del) and exits 0.
// On failure it prints one JSON object {"msg": ..., "code": ..., "details": ...} (code and
// details only when the plugin returned a CNI error) and exits 1.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: libcni-driver <add|check|del|cached> [flags]"))
	}
	verb := os.Args[1]
	flags := flag.NewFlagSet("libcni-driver "+verb, flag.ContinueOnError)
	conflist := flags.String("conflist", "", "network configuration list file")
	id := flags.String("id", "", "container ID")
	netns := flags.String("netns", "", "network namespace path")
	ifname := flags.String("ifname", "eth0", "container interface name")
	path := flags.String("path", "", "plugin directories, colon separated (CNI_PATH)")
	cacheDir := flags.String("cache-dir", "", "libcni cache directory")
	args := flags.String("args", "", "CNI_ARGS as K=V;K=V")
	capArgs := flags.String("capability-args", "", "capability arguments as a JSON object")
	if err := flags.Parse(os.Args[2:]); err != nil {
		fail(fmt.Errorf("parse flags: %w", err))
	}
	if *conflist == "" || *id == "" || *path == "" || *cacheDir == "" {
		fail(errors.New("-conflist, -id, -path and -cache-dir are required"))
	}

	list, err := libcni.ConfListFromFile(*conflist)
	if err != nil {
		fail(fmt.Errorf("load %s: %w", *conflist, err))
	}
	rt := &libcni.RuntimeConf{ContainerID: *id, NetNS: *netns, IfName: *ifname}
	if *args != "" {
		for _, kv := range strings.Split(*args, ";") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				fail(fmt.Errorf("-args entry %q is not K=V", kv))
			}
			rt.Args = append(rt.Args, [2]string{k, v})
		}
	}
	if *capArgs != "" {
		if err := json.Unmarshal([]byte(*capArgs), &rt.CapabilityArgs); err != nil {
			fail(fmt.Errorf("-capability-args: %w", err))
		}
	}

	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(*path), *cacheDir, nil)
	ctx := context.Background()
	switch verb {
	case "add":
		result, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		printResult(result)
	case "check":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	case "del":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	case "cached":
		result, err := cni.GetNetworkListCachedResult(list, rt)
		if err != nil {
			fail(err)
		}
		if result == nil {
			fail(errors.New("no cached result"))
		}
		printResult(result)
	default:
		fail(fmt.Errorf("unknown verb %q (add, check, del, cached)", verb))
	}
}

func printResult(result types.Result) {
	out, err := json.Marshal(result)
	if err != nil {
		fail(fmt.Errorf("encode result: %w", err))
	}
	fmt.Println(string(out))
}

// fail prints the error as one JSON object, keeping the plugin's CNI code when libcni
// passed a *types.Error through (wrapped in its "plugin ... failed" context).
func fail(err error) {
	out := map[string]interface{}{"msg": err.Error()}
	var cniErr *types.Error
	if errors.As(err, &cniErr) {
		out["code"] = cniErr.Code
		out["details"] = cniErr.Details
	}
	encoded, _ := json.Marshal(out)
	fmt.Println(string(encoded))
	os.Exit(1)
}
