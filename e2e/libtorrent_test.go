package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const pythonBin = "/usr/bin/python3"

// ltEvent is one JSON line printed by testdata/ltclient.py.
type ltEvent struct {
	Ev        string  `json:"ev"`
	T         float64 `json:"t"` // Unix time the line was printed
	NumPeers  int     `json:"num_peers"`
	URL       string  `json:"url"`
	Msg       string  `json:"msg"`
	Failure   string  `json:"failure_reason"`
	Error     string  `json:"error"`
	State     string  `json:"state"`
	Progress  float64 `json:"progress"`
	TotalDone int64   `json:"total_done"`
	IsSeeding bool    `json:"is_seeding"`
}

// ltClient is a running testdata/ltclient.py process.
type ltClient struct{ *proc }

// requireLibtorrent fails the test when python3-libtorrent is missing.
func requireLibtorrent(t *testing.T) {
	t.Helper()
	requireBinary(t, pythonBin, "python3")
	if out, err := runCmd(30*time.Second, pythonBin, "-c", "import libtorrent"); err != nil {
		t.Fatalf("python3 cannot import libtorrent: install the Debian package %q (apt-get install python3-libtorrent): %v %s",
			"python3-libtorrent", err, out)
	}
}

// startLT runs ltclient.py for one torrent, listening on listen (IP:port);
// extraArgs go to ltclient.py (e.g. "--set", "min_announce_interval=1").
func startLT(t *testing.T, name, torrent, savePath, listen string, extraArgs ...string) *ltClient {
	t.Helper()
	script, err := filepath.Abs("testdata/ltclient.py")
	if err != nil {
		t.Fatal(err)
	}
	argv := []string{pythonBin, "-u", script,
		"--torrent", torrent, "--save-path", savePath, "--listen", listen, "--max-seconds", "300"}
	return &ltClient{startProc(t, name, nil, append(argv, extraArgs...)...)}
}

// events parses every complete JSON line printed so far.
func (c *ltClient) events() []ltEvent {
	var evs []ltEvent
	sc := bufio.NewScanner(strings.NewReader(c.out.String()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e ltEvent
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Ev != "" {
			evs = append(evs, e)
		}
	}
	return evs
}

// has reports whether an event satisfying pred was printed.
func (c *ltClient) has(pred func(ltEvent) bool) (ltEvent, bool) {
	for _, e := range c.events() {
		if pred(e) {
			return e, true
		}
	}
	return ltEvent{}, false
}

// lastStatus is the newest status event.
func (c *ltClient) lastStatus() (ltEvent, bool) {
	evs := c.events()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Ev == "status" {
			return evs[i], true
		}
	}
	return ltEvent{}, false
}

// alive is an alive func for waitLeeched, also failing on a libtorrent
// torrent or file error.
func (c *ltClient) alive() error {
	if c.exited() {
		return &exitedError{c.name, c.exitString()}
	}
	if e, ok := c.has(func(e ltEvent) bool { return e.Ev == "error" }); ok {
		return fmt.Errorf("%s reported an error: %s", c.name, e.Msg)
	}
	return nil
}

func loopbackListen(t *testing.T) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freeTCPUDPPort(t, "127.0.0.1")))
}

// TestLibtorrent: a python3-libtorrent seeder and leecher on loopback swap
// an 8 MiB file through the HTTP tracker and through the UDP tracker.
func TestLibtorrent(t *testing.T) {
	requireLibtorrent(t)
	tr := startTracker(t, "127.0.0.1")
	for _, tc := range []struct {
		name     string
		announce func(string) string
	}{
		{"HTTP", tr.httpAnnounceURL},
		{"UDP", tr.udpAnnounceURL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSwarm(t, tr, tc.announce)
			seeder := startLT(t, "libtorrent seeder", s.seedTorrent, s.seedDir, loopbackListen(t))
			s.waitSeeder(t)
			leecher := startLT(t, "libtorrent leecher", s.leechTorrent, s.leechDir, loopbackListen(t))
			s.waitLeeched(t, func() error {
				if err := seeder.alive(); err != nil {
					return err
				}
				return leecher.alive()
			})
			if !waitFor(30*time.Second, 100*time.Millisecond, func() bool {
				_, ok := leecher.has(func(e ltEvent) bool { return e.Ev == "finished" })
				return ok
			}) {
				t.Fatal("libtorrent leecher never reported torrent_finished")
			}
			if e, ok := leecher.has(func(e ltEvent) bool { return e.Ev == "tracker_error" }); ok {
				t.Errorf("libtorrent leecher reported a tracker error: %s", e.Msg)
			}
			s.waitCompleted(t)
		})
	}
}
