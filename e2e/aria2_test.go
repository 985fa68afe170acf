package e2e

import (
	"os"
	"strconv"
	"testing"
)

// aria2Args are the options shared by the aria2c seeder and leecher: no
// DHT, LPD or PEX (so peers can only come from the tracker), loopback only,
// and aria2 stops by itself if the test process dies.
func aria2Args(dir string, port int) []string {
	return []string{
		"aria2c",
		"--dir=" + dir,
		"--listen-port=" + strconv.Itoa(port),
		"--interface=127.0.0.1",
		"--disable-ipv6=true",
		"--enable-dht=false", "--enable-dht6=false",
		"--bt-enable-lpd=false", "--enable-peer-exchange=false",
		"--file-allocation=none",
		"--summary-interval=0",
		"--console-log-level=notice",
		"--log=-", "--log-level=info",
		"--stop-with-process=" + strconv.Itoa(os.Getpid()),
	}
}

// TestAria2HTTP: an aria2c seeder and an aria2c leecher on loopback, each
// with its own passkey, swap an 8 MiB file through the HTTP tracker.
func TestAria2HTTP(t *testing.T) {
	requireBinary(t, "aria2c", "aria2")
	tr := startTracker(t, "127.0.0.1")
	s := newSwarm(t, tr, tr.httpAnnounceURL)

	seedArgs := append(aria2Args(s.seedDir, freeTCPUDPPort(t, "127.0.0.1")),
		"--check-integrity=true", "--seed-ratio=0.0", s.seedTorrent)
	seeder := startProc(t, "aria2c seeder", nil, seedArgs...)
	s.waitSeeder(t)

	// The leecher keeps seeding after the download: with --seed-time=0
	// aria2c would send only event=stopped (never event=completed).
	leechArgs := append(aria2Args(s.leechDir, freeTCPUDPPort(t, "127.0.0.1")),
		"--seed-ratio=0.0", s.leechTorrent)
	leecher := startProc(t, "aria2c leecher", nil, leechArgs...)
	s.waitLeeched(t, allAlive(seeder, leecher))
	s.waitCompleted(t)
}
