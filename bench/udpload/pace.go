package main

import (
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Open loop (-rate N): one pacer goroutine sends request g at
// start + g/N seconds, whatever the replies do, going round the sockets
// (request g to socket g mod sockets, or the next socket with a free slot
// when that one's window is full). Latency is measured from the scheduled
// time, so a tracker that stalls is charged for every request scheduled
// during the stall, not just the few in flight (no coordinated omission);
// the latency from the actual send (service time) and the pacer's own lag
// (actual send - scheduled) are reported beside it. When every window is
// full the pacer waits: the requests it owes keep their scheduled times.
// A request unanswered after -timeout enters the percentiles with the time
// it waited (so with over 1 % timeouts p99 is at least -timeout).
//
// Go's timers wake at best 1 ms late when the process is idle (the
// netpoller sleeps in whole milliseconds), which would be most of a sub-ms
// latency budget, so the pacer sleeps in nanosleep(2) on its own thread with
// a 1 µs timer slack. Readers block in the netpoller: a reply wakes them at
// once.
//
// Pinned to one CPU, the pacer shares it with the readers, and it used to
// fall silent for 3-10 ms at a time at 150k/s: its sleep ended while reader
// threads held the CPU, or it waited on a socket's lock held by a reader
// that another reader had preempted; then it sent everything it owed at
// once, a burst the tracker was charged for. Two things keep it on time:
// the process has two Ps (openLoopProcs), one for the pacer and one for all
// the readers, so readers take turns as goroutines instead of preempting
// each other as threads; and with -pacer-nice its thread runs at nice -20,
// so it goes first when its sleep ends. That is for a pinned generator
// only: sharing the CPUs with the tracker, a nice -20 pacer starved the
// tracker (its median latency went from 0.15 to 2 ms at 110k/s).

// maxRate bounds -rate (requests per second).
const maxRate = 2_000_000

// openLoopProcs is GOMAXPROCS in the open loop: the pacer's P, which it
// gives up while it sleeps, and one for the readers.
const openLoopProcs = 2

// dueOffset is when request g is scheduled, from the start, at rate
// requests per second.
func dueOffset(g int64, rate int) time.Duration {
	return time.Duration(g * int64(time.Second) / int64(rate))
}

// scheduledBy is how many requests are scheduled before elapsed.
func scheduledBy(elapsed time.Duration, rate int) int64 {
	if elapsed <= 0 {
		return 0
	}
	// dueOffset(g) < elapsed  <=>  g*1e9 < elapsed*rate (up to rounding)
	n := (int64(elapsed)*int64(rate) + int64(time.Second) - 1) / int64(time.Second)
	for n > 0 && dueOffset(n-1, rate) >= elapsed {
		n--
	}
	for dueOffset(n, rate) < elapsed {
		n++
	}
	return n
}

// pacerStats is what the pacer counts.
type pacerStats struct {
	sent      int64     // requests written
	scheduled int64     // requests due before the pacer stopped
	stalls    int64     // times every window was full when a request was due
	lag       histogram // actual send - scheduled
	nice      bool      // the pacer's thread ran at nice -20
}

func paced(sh *shared, ws []*worker, res *result) *result {
	o := &sh.o
	// The pacer sits in nanosleep most of the time; with one P (taskset to
	// one CPU) the readers would wait for sysmon to take the P back.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(openLoopProcs))
	sh.start = time.Now()
	sh.deadline = sh.start.Add(o.duration)
	var pacerDone atomic.Bool
	var wg sync.WaitGroup
	end := make([]time.Time, len(ws))
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			end[i] = w.readLoop(&pacerDone)
		}()
	}
	var ps pacerStats
	var stopped time.Time
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread()
		setTimerSlack()
		if o.pacerNice {
			ps.nice = raisePacer()
		}
		if !ps.nice {
			// A raised thread is not handed back: Go ends it with the goroutine.
			defer runtime.UnlockOSThread()
		}
		stopped = sh.pace(ws, &ps)
		pacerDone.Store(true)
	}()
	wg.Wait()
	for _, w := range ws {
		res.add(&w.st)
	}
	res.elapsed = stopped.Sub(sh.start)
	res.sockets = len(ws)
	res.paced = &ps
	return res
}

// pace sends the schedule until the deadline or the budget; it returns when
// it stopped.
func (sh *shared) pace(ws []*worker, ps *pacerStats) time.Time {
	o := &sh.o
	s := int64(len(ws))
	var g int64 // the next request of the schedule
	total := scheduledBy(o.duration, o.rate)
	ps.scheduled = total
	for {
		now := time.Now()
		el := now.Sub(sh.start)
		if g >= total {
			return sh.deadline
		}
		if el >= o.duration+o.timeout {
			return now // overloaded: what is left counts as unsent
		}
		due := dueOffset(g, o.rate)
		if due > el {
			preciseSleep(max(due-el, o.quantum))
			continue
		}
		// Everything due by now, at most 1024 requests a round.
		stall := false
		for n := 0; n < 1024 && g < total && dueOffset(g, o.rate) <= el; n++ {
			w := ws[g%s]
			if !w.take() {
				found := false
				for k := int64(1); k < s; k++ {
					if w = ws[(g+k)%s]; w.take() {
						found = true
						break
					}
				}
				if !found {
					stall = true
					break
				}
			}
			num, ok := sh.claim()
			if !ok {
				w.mu.Lock()
				w.free = append(w.free, w.taken)
				w.mu.Unlock()
				sh.flush(ws, ps)
				ps.scheduled = g
				return time.Now()
			}
			due := sh.start.Add(dueOffset(g, o.rate))
			w.build(num, due, now)
			ps.lag.record(now.Sub(due))
			g++
		}
		sh.flush(ws, ps)
		if stall {
			ps.stalls++
			preciseSleep(50 * time.Microsecond)
		}
	}
}

// take reserves a free slot for the pacer's next request (w.taken) if the
// window has one and the socket has a connection id.
func (w *worker) take() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.free) == 0 || w.pend >= len(w.wbuf) {
		return false
	}
	w.taken = w.free[len(w.free)-1]
	w.free = w.free[:len(w.free)-1]
	return true
}

// build writes request num into the taken slot and the next wbuf entry.
func (w *worker) build(num int64, due, now time.Time) {
	o := &w.sh.o
	w.mu.Lock()
	defer w.mu.Unlock()
	idx := w.taken
	tx := w.nextTx(idx)
	b := w.wbuf[w.pend].Buffers[0][:0]
	kind := uint8(kindAnnounce)
	if o.scrapeEvery > 0 && (num+1)%int64(o.scrapeEvery) == 0 && !o.isChurn(num) {
		for h := range w.hashes {
			w.hashes[h] = InfoHash(o.model.PickTorrent(w.rng))
		}
		b = appendScrape(b, w.connID, tx, w.hashes, w.sh.opts)
		kind = kindScrape
	} else {
		b = w.appendAnnounce(b, tx, num, now)
	}
	w.slots[idx] = slot{kind: kind, tx: tx, sent: now, due: due}
	w.wbuf[w.pend].Buffers[0] = b
	w.pend++
}

// flush writes every socket's built requests.
func (sh *shared) flush(ws []*worker, ps *pacerStats) {
	for _, w := range ws {
		if w.pend == 0 {
			continue
		}
		k := w.pend
		for sent := 0; sent < k; {
			n, err := w.bc.WriteBatch(w.wbuf[sent:k], 0)
			if err != nil || n <= 0 {
				w.mu.Lock()
				for i := sent; i < k; i++ {
					w.release(binaryTx(w.wbuf[i].Buffers[0]))
				}
				w.st.sendErrors += uint64(k - sent)
				w.mu.Unlock()
				break
			}
			sent += n
			ps.sent += int64(n)
		}
		w.mu.Lock()
		w.pend = 0
		w.mu.Unlock()
	}
}

// readLoop reads replies, expires requests past -timeout and renews the
// connection id, until the pacer is done and every request is answered or
// timed out (at most -timeout after the deadline).
func (w *worker) readLoop(pacerDone *atomic.Bool) time.Time {
	o := &w.sh.o
	hardStop := w.sh.deadline.Add(o.timeout + 10*time.Millisecond)
	cbuf := make([]byte, 0, 16)
	for {
		now := time.Now()
		w.mu.Lock()
		w.expire(now)
		if !w.connOut && now.Sub(w.connAt) >= connIDRefresh && len(w.free) > 0 {
			idx := w.free[len(w.free)-1]
			tx := w.nextTx(idx)
			if _, err := w.conn.Write(appendConnect(cbuf[:0], tx)); err != nil {
				w.st.sendErrors++
			} else {
				w.free = w.free[:len(w.free)-1]
				w.slots[idx] = slot{kind: kindConnect, tx: tx, sent: now, due: now}
				w.connOut = true
			}
		}
		idle := len(w.free) == len(w.slots) && w.pend == 0
		w.mu.Unlock()
		if (pacerDone.Load() && idle) || !now.Before(hardStop) {
			return now
		}
		dl := now.Add(readWait)
		if dl.After(hardStop) {
			dl = hardStop
		}
		if w.rdl.Sub(now) < readWait/2 || w.rdl.After(hardStop) {
			_ = w.conn.SetReadDeadline(dl)
			w.rdl = dl
		}
		n, err := w.bc.ReadBatch(w.rbuf, 0)
		if err != nil {
			if !isTimeout(err) {
				w.mu.Lock()
				w.st.sockErrors++
				w.mu.Unlock()
				if errors.Is(err, net.ErrClosed) {
					return time.Now()
				}
				time.Sleep(10 * time.Millisecond)
			}
			continue
		}
		at := time.Now()
		w.mu.Lock()
		for i := range n {
			var kat time.Time
			if w.stamps {
				kat, _ = rxStamp(w.rbuf[i].OOB[:w.rbuf[i].NN])
			}
			w.receive(w.rbuf[i].Buffers[0][:w.rbuf[i].N], at, kat)
		}
		w.mu.Unlock()
	}
}
