package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// transmission is a transmission-daemon running inside a lab namespace,
// with its RPC on the namespace's own loopback.
type transmission struct {
	t    *testing.T
	name string
	host *nsHost
	proc *proc
}

const transmissionRPC = "127.0.0.1:9091"

// startTransmission starts a daemon in h with its own config dir and
// download dir, peers bound to h's address, no DHT/LPD/uTP/port mapping.
func startTransmission(t *testing.T, name string, h *nsHost, downloadDir string) *transmission {
	t.Helper()
	cfg := t.TempDir()
	argv := h.exec("transmission-daemon", "-f", "-T",
		"-g", cfg,
		"-w", downloadDir,
		"--no-incomplete-dir",
		"-r", "127.0.0.1", "-p", "9091",
		"-i", h.ip, "-P", "51413",
		"-O", "-Y", "-M", "--no-utp",
		"-GSR",
		"--log-info")
	tm := &transmission{t: t, name: name, host: h}
	tm.proc = startProc(t, name, nil, argv...)
	t.Cleanup(func() {
		if t.Failed() && !tm.proc.exited() {
			for _, args := range [][]string{{"-l"}, {"-t", "all", "-i"}, {"-t", "all", "-it"}} {
				out, _ := tm.remote(args...)
				t.Logf("%s: transmission-remote %s:\n%s", name, strings.Join(args, " "), out)
			}
		}
	})
	var last error
	ok := waitFor(20*time.Second, 200*time.Millisecond, func() bool {
		if tm.proc.exited() {
			return false
		}
		_, last = tm.remote("-l")
		return last == nil
	})
	if !ok {
		t.Fatalf("%s RPC not answering within 20s (process %s): %v", name, tm.proc.exitString(), last)
	}
	return tm
}

// remote runs transmission-remote against the daemon inside its namespace.
func (tm *transmission) remote(args ...string) (string, error) {
	argv := tm.host.exec(append([]string{"transmission-remote", transmissionRPC}, args...)...)
	return runCmd(15*time.Second, argv...)
}

// add adds a .torrent, saving into dir.
func (tm *transmission) add(torrent, dir string) {
	tm.t.Helper()
	out, err := tm.remote("-a", torrent, "-w", dir)
	if err != nil || !strings.Contains(out, "success") {
		tm.t.Fatalf("%s: adding %s: %v %s", tm.name, filepath.Base(torrent), err, out)
	}
}

// TestTransmissionHTTP: two transmission-daemons, each in a network
// namespace of its own (transmission will not trade with peers on 127.x),
// swap an 8 MiB file through the HTTP tracker listening on the bridge.
func TestTransmissionHTTP(t *testing.T) {
	requireBinary(t, "transmission-daemon", "transmission-daemon")
	requireBinary(t, "transmission-remote", "transmission-cli")
	l := newLab(t, 2)
	tr := startTracker(t, l.hostIP)
	for _, h := range l.hosts {
		h.waitReachable(t, tr.httpAddr)
	}
	s := newSwarm(t, tr, tr.httpAnnounceURL)

	seeder := startTransmission(t, "transmission seeder", l.hosts[0], s.seedDir)
	seeder.add(s.seedTorrent, s.seedDir)
	s.waitSeeder(t)

	leecher := startTransmission(t, "transmission leecher", l.hosts[1], s.leechDir)
	leecher.add(s.leechTorrent, s.leechDir)
	s.waitLeeched(t, allAlive(seeder.proc, leecher.proc))
	s.waitCompleted(t)
}
