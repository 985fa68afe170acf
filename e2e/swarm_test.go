package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	transferTimeout = 120 * time.Second
	seederTimeout   = 30 * time.Second
)

// swarm is one registered torrent with a seeder user and a leecher user,
// the payload in seedDir and an empty leechDir.
type swarm struct {
	tr           *tracker
	announceURL  func(passkey string) string
	pl           payload
	infoHash     string
	seedPK       string
	leechPK      string
	seedDir      string
	leechDir     string
	torrentDir   string
	seedTorrent  string // .torrent announcing with the seeder's passkey
	leechTorrent string // .torrent announcing with the leecher's passkey
}

// torrentFor writes another .torrent of the swarm's payload announcing
// with passkey; the info hash is the same.
func (s *swarm) torrentFor(t *testing.T, name, passkey string) string {
	t.Helper()
	p := filepath.Join(s.torrentDir, name+".torrent")
	if ih := makeTorrent(t, s.pl, s.announceURL(passkey), p); ih != s.infoHash {
		t.Fatalf("info hashes differ between passkeys: %s vs %s", s.infoHash, ih)
	}
	return p
}

// newSwarm creates the payload, the users, both .torrent files and
// registers the torrent. announceURL maps a passkey to an announce URL.
func newSwarm(t *testing.T, tr *tracker, announceURL func(passkey string) string) *swarm {
	t.Helper()
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	s := &swarm{tr: tr, announceURL: announceURL, seedDir: t.TempDir(), leechDir: t.TempDir()}
	s.torrentDir = t.TempDir()
	s.seedPK = tr.createUser("seeder-" + name)
	s.leechPK = tr.createUser("leecher-" + name)
	if s.seedPK == s.leechPK {
		t.Fatalf("two users got the same passkey %q", s.seedPK)
	}
	// The file name must not contain "passkey": tests look for that word
	// in client messages that also quote the torrent's name.
	s.pl = makePayload(t, s.seedDir, "payload-"+randHex(t, 4)+".bin", payloadSize)
	s.seedTorrent = filepath.Join(s.torrentDir, "seed.torrent")
	s.infoHash = makeTorrent(t, s.pl, announceURL(s.seedPK), s.seedTorrent)
	s.leechTorrent = s.torrentFor(t, "leech", s.leechPK)
	tr.registerTorrent(s.infoHash, s.pl.size, s.pl.name)
	t.Logf("swarm: torrent %s (%s, %d bytes)", s.infoHash, s.pl.name, s.pl.size)
	return s
}

// leechFile is where the leecher's copy of the payload ends up.
func (s *swarm) leechFile() string { return filepath.Join(s.leechDir, s.pl.name) }

// waitSeeder waits until the tracker counts the seeder.
func (s *swarm) waitSeeder(t *testing.T) {
	t.Helper()
	st := s.tr.waitStats(s.infoHash, "seeders >= 1", seederTimeout,
		func(st torrentStats) bool { return st.Seeders >= 1 })
	t.Logf("tracker sees the seeder: %+v", st)
}

// waitLeeched waits until the leecher's file has the payload's SHA-256;
// alive reports a dead client early.
func (s *swarm) waitLeeched(t *testing.T, alive func() error) {
	t.Helper()
	start := time.Now()
	ok, err := waitFileSHA256(s.leechFile(), s.pl.sha256, transferTimeout, alive)
	if err != nil {
		t.Fatalf("leecher failed before completing: %v", err)
	}
	if !ok {
		state := "missing"
		if fi, err := os.Stat(s.leechFile()); err == nil {
			state = fmt.Sprintf("%d bytes, sha256 %s", fi.Size(), fileSHA256(s.leechFile()))
		}
		t.Fatalf("leecher did not complete within %v: %s is %s, want sha256 %s",
			transferTimeout, s.leechFile(), state, s.pl.sha256)
	}
	t.Logf("leecher's copy verified by SHA-256 after %v", time.Since(start).Round(time.Millisecond))
}

// waitCompleted waits until the tracker has counted the completion once
// and sees both clients (still running) as seeders.
func (s *swarm) waitCompleted(t *testing.T) {
	t.Helper()
	st := s.tr.waitStats(s.infoHash, "completed == 1, seeders == 2, leechers == 0", 30*time.Second,
		func(st torrentStats) bool { return st.Completed == 1 && st.Seeders == 2 && st.Leechers == 0 })
	t.Logf("tracker counted the completion: %+v", st)
}

// allAlive is an alive func for waitLeeched: an error once any of procs
// exited.
func allAlive(procs ...*proc) func() error {
	return func() error {
		for _, p := range procs {
			if p.exited() {
				return &exitedError{p.name, p.exitString()}
			}
		}
		return nil
	}
}

type exitedError struct{ name, how string }

func (e *exitedError) Error() string { return e.name + " exited: " + e.how }
