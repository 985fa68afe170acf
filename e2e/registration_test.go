package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestAnnounceRightAfterRegistration: once the admin API has answered 201
// for a new user and a new torrent, the very next announce with that
// passkey and info hash must succeed. (A site registers an upload and the
// uploader's client announces at once; a spurious "unknown passkey" or
// "torrent not registered" there makes clients back off for minutes.)
func TestAnnounceRightAfterRegistration(t *testing.T) {
	tr := startTracker(t, "127.0.0.1")
	const trials = 40
	var failures []string
	for i := range trials {
		pk := tr.createUser(fmt.Sprintf("fresh-%d", i))
		ih := randHex(t, 20)
		tr.registerTorrent(ih, payloadSize, fmt.Sprintf("fresh-%d", i))
		p := newRawPeer(t, uint16(40000+i))
		start := time.Now()
		res, err := p.httpAnnounce(tr.httpAnnounceURL(pk), ih, 0, "started")
		if err != nil {
			t.Fatalf("trial %d: %v (raw %q)", i, err, res.raw)
		}
		if res.failure == "" {
			continue
		}
		// Measure how long the registration took to become visible.
		visible := "not within 2s"
		if waitFor(2*time.Second, 5*time.Millisecond, func() bool {
			r, err := p.httpAnnounce(tr.httpAnnounceURL(pk), ih, 0, "started")
			return err == nil && r.failure == ""
		}) {
			visible = "after " + time.Since(start).Round(100*time.Microsecond).String()
		}
		failures = append(failures, fmt.Sprintf("trial %d: first announce got %q; visible %s", i, res.failure, visible))
	}
	if len(failures) > 0 {
		t.Errorf("%d of %d announces sent right after a 201 from the admin API failed "+
			"(registration not yet visible to the announce path):", len(failures), trials)
		for _, f := range failures {
			t.Log(f)
		}
	}
}
