package peerstore

import (
	"runtime"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
)

// gcBudget is the work units (one per record looked at, gcRemoveCost per
// record removed) the collector does per lock hold. About 2048 record
// checks take ~5 µs, so a sweep never holds a shard for long.
const (
	gcBudget     = 2048
	gcRemoveCost = 16
)

// tick advances the store clock from cfg.Now.
func (s *Store) tick() {
	d := s.cfg.Now().Sub(s.start)
	if d < 0 {
		d = 0
	}
	s.now.Store(uint32(d / time.Second))
}

func (s *Store) runClock() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.tick()
		}
	}
}

func (s *Store) runGC() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.tick()
			s.collectGarbage()
		}
	}
}

// collectGarbage removes the peers that have not announced for longer than
// the peer lifetime, and swarms left empty, one shard at a time and at most
// gcBudget units of work per lock hold. It returns the peers removed.
func (s *Store) collectGarbage() int {
	begin := time.Now()
	now := s.now.Load()
	removed := 0
	var maxHold time.Duration
	for af := range s.fams {
		f := &s.fams[af]
		for i := range f.shards {
			if s.closed.Load() {
				return removed
			}
			n, hold := f.sweep(&f.shards[i], now, s.lifetime)
			removed += n
			maxHold = max(maxHold, hold)
		}
	}
	s.gcRuns.Add(1)
	s.gcRemoved.Add(uint64(removed))
	s.gcNanos.Store(int64(time.Since(begin)))
	s.gcMaxHold.Store(int64(maxHold))
	return removed
}

// stale reports whether a peer last seen at seen has outlived lifetime.
func stale(seen, now, lifetime uint32) bool {
	return now > seen && now-seen > lifetime
}

// sweep collects one shard. Swarms are visited from the last to the first
// and records likewise: deleting swaps the last element into the hole, and
// the last element has then already been visited, so nothing present when
// the sweep starts is skipped, even across lock releases (what is added
// meanwhile is fresh anyway). It returns the peers removed and the longest
// time it held the lock.
func (f *family) sweep(sh *shard, now, lifetime uint32) (int, time.Duration) {
	var (
		removed int
		si      = -1 // swarm being swept
		ih      bittorrent.InfoHash
		started bool // ih, phase and ri describe swarm si
		phase   int  // 0: seeders, 1: leechers, 2: done
		ri      int  // next record to look at
	)
	var maxHold time.Duration
	sh.mu.Lock()
	locked := time.Now()
	defer func() { sh.mu.Unlock() }()
	si = len(sh.swarms) - 1
	budget := gcBudget
	for si >= 0 {
		if budget <= 0 {
			maxHold = max(maxHold, time.Since(locked))
			sh.mu.Unlock()
			runtime.Gosched()
			sh.mu.Lock()
			locked = time.Now()
			budget = gcBudget
		}
		if sh.stopped {
			return removed, maxHold
		}
		if si >= len(sh.swarms) {
			si, started = len(sh.swarms)-1, false
			continue
		}
		sw := &sh.swarms[si]
		if !started || sw.ih != ih {
			started, ih, phase, ri = true, sw.ih, 0, len(sw.seeders)-1
		}
		for phase < 2 && budget > 0 {
			seeder := phase == 0
			set := *sw.set(seeder)
			if ri >= len(set) {
				ri = len(set) - 1
			}
			if ri < 0 {
				phase++
				ri = len(sw.leechers) - 1
				continue
			}
			budget--
			if stale(set[ri].seen, now, lifetime) {
				f.detach(sw, seeder, ri, -1)
				f.freeIP(sw)
				sh.count(seeder, -1)
				if sw.size() == 0 {
					sh.live--
				}
				removed++
				budget -= gcRemoveCost
			}
			ri--
		}
		if phase < 2 {
			continue // out of budget
		}
		budget--
		if sw.size() == 0 {
			sh.dropSwarm(si)
		}
		si, started = si-1, false
	}
	// Go maps never shrink: rebuild one that has shrunk to a quarter.
	if sh.peak >= 64 && 4*len(sh.index) <= sh.peak {
		m := make(map[bittorrent.InfoHash]int32, len(sh.index))
		for k, v := range sh.index {
			m[k] = v
		}
		sh.index, sh.peak = m, len(m)
	}
	if cap(sh.swarms) > 8 && 2*len(sh.swarms) <= cap(sh.swarms) {
		sh.swarms = append(make([]swarm, 0, grown(len(sh.swarms))), sh.swarms...)
	}
	return removed, max(maxHold, time.Since(locked))
}
