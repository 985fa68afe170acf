package e2e

import (
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// lab is a private test network: a bridge in the root namespace carrying
// hostIP (where the tracker listens) and one network namespace per client
// host, each joined to the bridge by a veth pair. Nothing is routed
// anywhere else, and nothing is added to lo in the root namespace.
type lab struct {
	bridge string
	prefix string // first three octets, e.g. "10.99.37"
	hostIP string // prefix + ".1", on the bridge
	hosts  []*nsHost
}

// nsHost is one client host: a network namespace with one address.
type nsHost struct {
	ns   string // namespace name
	ip   string
	veth string // root-namespace end of the veth pair
}

var labSeq atomic.Int32

// nsPrefix starts the names of the namespaces the tests create.
const nsPrefix = "seedpay-e2e-"

// sweepStaleLabs deletes namespaces and links left behind by an e2e run
// whose process no longer exists (e.g. killed by a `go test` timeout before
// its cleanups ran). Only names of the lab pattern are considered, and only
// when the pid they carry is dead.
func sweepStaleLabs() {
	deadOwner := func(name string, prefix string) bool {
		if !strings.HasPrefix(name, prefix) || len(name) < len(prefix)+8 {
			return false
		}
		pid, err := strconv.ParseInt(name[len(prefix):len(prefix)+6], 16, 32)
		if err != nil || pid <= 1 || int(pid) == os.Getpid()&0xffffff {
			return false
		}
		return syscall.Kill(int(pid), 0) == syscall.ESRCH
	}
	if out, err := runCmd(10*time.Second, "ip", "netns", "list"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || !deadOwner(f[0], nsPrefix) {
				continue
			}
			if pids, err := runCmd(10*time.Second, "ip", "netns", "pids", f[0]); err == nil {
				for _, p := range strings.Fields(pids) {
					if pid, err := strconv.Atoi(p); err == nil && pid > 1 {
						_ = killPid(pid)
					}
				}
			}
			_, _ = runCmd(10*time.Second, "ip", "netns", "del", f[0])
		}
	}
	if out, err := runCmd(10*time.Second, "ip", "-o", "link", "show"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			// "7: spb0012ab01: <...>" or "8: spv0012ab010@if2: <...>"
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name := strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]
			for _, prefix := range []string{"spb", "spv", "spp"} {
				if deadOwner(name, prefix) {
					_, _ = runCmd(10*time.Second, "ip", "link", "del", name)
				}
			}
		}
	}
}

// newLab creates a bridge and n namespaces with unique names and registers
// their deletion with t.Cleanup.
func newLab(t *testing.T, n int) *lab {
	t.Helper()
	requireBinary(t, "ip", "iproute2")
	// Names carry the test process's pid (6 hex digits) so sweepStaleLabs
	// can tell leftovers of a dead run; interface names are limited to 15
	// bytes: "spb" + 6 + 2 (+ 1 for veths).
	id := fmt.Sprintf("%06x%02x", os.Getpid()&0xffffff, labSeq.Add(1)&0xff)
	l := &lab{bridge: "spb" + id}
	l.prefix = pickSubnet(t)
	l.hostIP = l.prefix + ".1"

	t.Cleanup(func() { l.destroy(t) })
	mustRun(t, "ip", "link", "add", "name", l.bridge, "type", "bridge", "forward_delay", "0", "stp_state", "0")
	mustRun(t, "ip", "addr", "add", l.hostIP+"/24", "dev", l.bridge)
	mustRun(t, "ip", "link", "set", l.bridge, "up")
	for i := range n {
		h := &nsHost{
			ns:   fmt.Sprintf("%s%s-%d", nsPrefix, id, i),
			ip:   fmt.Sprintf("%s.%d", l.prefix, i+2),
			veth: fmt.Sprintf("spv%s%d", id, i),
		}
		l.hosts = append(l.hosts, h)
		peer := fmt.Sprintf("spp%s%d", id, i)
		mustRun(t, "ip", "netns", "add", h.ns)
		mustRun(t, "ip", "link", "add", h.veth, "type", "veth", "peer", "name", peer)
		mustRun(t, "ip", "link", "set", peer, "netns", h.ns)
		mustRun(t, "ip", "link", "set", h.veth, "master", l.bridge)
		mustRun(t, "ip", "link", "set", h.veth, "up")
		mustRun(t, "ip", "netns", "exec", h.ns, "ip", "link", "set", "lo", "up")
		mustRun(t, "ip", "netns", "exec", h.ns, "ip", "addr", "add", h.ip+"/24", "dev", peer)
		mustRun(t, "ip", "netns", "exec", h.ns, "ip", "link", "set", peer, "up")
	}
	t.Logf("lab: bridge %s %s/24, hosts %v", l.bridge, l.hostIP, l.hostList())
	return l
}

func (l *lab) hostList() []string {
	var s []string
	for _, h := range l.hosts {
		s = append(s, h.ns+"="+h.ip)
	}
	return s
}

// destroy kills whatever still runs in the namespaces, then deletes the
// namespaces (which deletes their veth pairs) and the bridge.
func (l *lab) destroy(t *testing.T) {
	for _, h := range l.hosts {
		if out, err := runCmd(10*time.Second, "ip", "netns", "pids", h.ns); err == nil {
			for _, f := range strings.Fields(out) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
					_ = killPid(pid)
				}
			}
		}
		if _, err := runCmd(10*time.Second, "ip", "netns", "del", h.ns); err != nil {
			t.Logf("cleanup: %v", err)
		}
		_, _ = runCmd(10*time.Second, "ip", "link", "del", h.veth) // normally gone already
	}
	if _, err := runCmd(10*time.Second, "ip", "link", "del", l.bridge); err != nil {
		t.Logf("cleanup: %v", err)
	}
}

// exec prefixes argv so it runs inside the host's namespace.
func (h *nsHost) exec(argv ...string) []string {
	return append([]string{"ip", "netns", "exec", h.ns}, argv...)
}

// waitReachable waits until a TCP connection from inside the namespace to
// addr succeeds (bridge ports and addresses can take a moment).
func (h *nsHost) waitReachable(t *testing.T, addr string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", host, port)
	var last error
	ok := waitFor(15*time.Second, 200*time.Millisecond, func() bool {
		_, last = runCmd(5*time.Second, h.exec("timeout", "2", "bash", "-c", script)...)
		return last == nil
	})
	if !ok {
		t.Fatalf("%s (%s) cannot reach %s: %v", h.ns, h.ip, addr, last)
	}
}

// pickSubnet picks a random 10.99.X.0/24 that no local interface uses.
func pickSubnet(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	routes, _ := runCmd(10*time.Second, "ip", "-4", "route", "show")
	for range 100 {
		prefix := fmt.Sprintf("10.99.%d", 1+mrand.IntN(254))
		_, subnet, _ := net.ParseCIDR(prefix + ".0/24")
		used := strings.Contains(routes, prefix+".")
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && (subnet.Contains(ipn.IP) || ipn.Contains(subnet.IP)) {
				used = true
			}
		}
		if !used {
			return prefix
		}
	}
	t.Fatal("no free 10.99.X.0/24 subnet")
	return ""
}
