package rewards

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// TestLocalSweepReleasesLockBetweenChunks: Sweep holds a shard's lock for
// sweepChunk records at a time; an announce between two chunks (here a new
// record, as Apply adds one) lands, and the sweep's result stays exact.
func TestLocalSweepReleasesLockBetweenChunks(t *testing.T) {
	a, err := NewLocalAccountant(acctConfig())
	if err != nil {
		t.Fatal(err)
	}
	sh := &a.shards[0]
	const n = 3*sweepChunk + 10
	now := acT0 + a.sessionTTL + 100
	for i := range n {
		touched := now - a.sessionTTL // idle for the TTL: dropped
		if i%2 == 0 {
			touched = now - 1
		}
		sh.recs[utKey{user: fmt.Sprintf("u%d", i)}] = &utRecord{sessions: []localSession{{touched: touched, seen: touched, member: true}}}
		sh.live++
	}
	old := sweepYield
	t.Cleanup(func() { sweepYield = old })
	yields := 0
	sweepYield = func(s *localShard) {
		if s != sh {
			t.Fatalf("yield for another shard")
		}
		if !s.mu.TryLock() {
			t.Fatalf("shard still locked between chunks")
		}
		yields++
		s.recs[utKey{user: fmt.Sprintf("new%d", yields)}] = &utRecord{sessions: []localSession{{touched: now, seen: now, member: true}}}
		s.live++
		s.mu.Unlock()
	}
	live := a.Sweep(now, 0, 1)
	if yields < n/sweepChunk {
		t.Fatalf("%d yields for %d records, want >= %d", yields, n, n/sweepChunk)
	}
	if want := n/2 + yields; live != want || sh.live != want || len(sh.recs) != want {
		t.Fatalf("live %d, shard live %d, records %d; want %d", live, sh.live, len(sh.recs), want)
	}
	for k, r := range sh.recs {
		if len(r.sessions) != 1 || now-r.sessions[0].touched >= a.sessionTTL {
			t.Fatalf("%q kept with %+v", k.user, r.sessions)
		}
	}
}

// TestLocalSweepConcurrentApply runs Sweep (chunked) against announces on
// the same shards (go test -race): the live count stays the sum of the
// records' sessions.
func TestLocalSweepConcurrentApply(t *testing.T) {
	fx := newHoldFixture(t, 2000, 4) // ~31 records per shard; chunks of sweepChunk
	a := fx.a
	old := sweepYield
	t.Cleanup(func() { sweepYield = old })
	sweepYield = func(*localShard) {}
	// Denser shards: several chunks each.
	big := fx.keys[0]
	for len(big) < 3*sweepChunk {
		u := fmt.Sprintf("x%d", len(big))
		ev := acctEv(u, 1, 1, acT0, 0, 0, 0)
		for j := 0; fx.shardIndex(utKey{u, ev.InfoHash}) != 0; j++ {
			ev.InfoHash[1], ev.InfoHash[2], ev.InfoHash[3] = byte(j), byte(j>>8), byte(j>>16)
		}
		a.Apply(&ev, acAllOpen, nil)
		big = append(big, utKey{u, ev.InfoHash})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(3, 4))
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := big[rng.IntN(len(big))]
			ev := Event{User: k.user, InfoHash: k.ih, Size: acSize, Seeders: acSeeders, Time: acT0 + int64(i%1000)}
			ev.PeerID[0] = byte(rng.IntN(4))
			ev.Stopped = i%7 == 0
			a.Apply(&ev, acAllOpen, nil)
		}
	}()
	for r := range 20 {
		a.Sweep(acT0+a.sessionTTL+int64(r*50), 0, 1)
	}
	close(stop)
	wg.Wait()
	sh := &a.shards[0]
	sessions := 0
	for _, r := range sh.recs {
		sessions += len(r.sessions)
	}
	if sessions != sh.live {
		t.Fatalf("shard live %d, sessions in records %d", sh.live, sessions)
	}
}
