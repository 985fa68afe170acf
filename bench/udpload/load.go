package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchConn is the batched I/O of ipv4.PacketConn and ipv6.PacketConn
// (recvmmsg/sendmmsg on Linux); both use the same Message type.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// connIDRefresh: BEP 15 clients may use a connection id for a minute; get a
// new one a bit before that.
const connIDRefresh = 50 * time.Second

// readWait bounds one blocking read so timeouts and the deadline are checked.
const readWait = 20 * time.Millisecond

type stats struct {
	announces, scrapes, connects uint64
	peers                        uint64 // peers in announce replies
	timeouts, late, malformed    uint64
	sendErrors, sockErrors       uint64
	errors                       map[string]uint64
	hist                         histogram // latency from the scheduled send (-rate) or the send
	svc                          histogram // latency from the actual send (service time)
	// kern is the latency from the scheduled send to the kernel's receive
	// stamp (-rate, Linux): the generator's wake-up left out.
	kern    histogram
	stamped uint64 // replies that carried a kernel stamp
	// slow counts the requests slower than -slow by when they were due
	// within a second (slowBuckets buckets): a tracker's once-a-second
	// work shows as a peak at one phase.
	slow [slowBuckets]uint64
}

// slowBuckets divides a second for -slow.
const slowBuckets = 20

func (s *stats) add(o *stats) {
	s.announces += o.announces
	s.scrapes += o.scrapes
	s.connects += o.connects
	s.peers += o.peers
	s.timeouts += o.timeouts
	s.late += o.late
	s.malformed += o.malformed
	s.sendErrors += o.sendErrors
	s.sockErrors += o.sockErrors
	if s.errors == nil {
		s.errors = map[string]uint64{}
	}
	for m, c := range o.errors {
		s.errors[m] += c
	}
	s.hist.merge(&o.hist)
	s.svc.merge(&o.svc)
	s.kern.merge(&o.kern)
	s.stamped += o.stamped
	for i, c := range o.slow {
		s.slow[i] += c
	}
}

const (
	kindFree = iota
	kindConnect
	kindAnnounce
	kindScrape
)

type slot struct {
	kind uint8
	tx   uint32
	sent time.Time // when it was written
	due  time.Time // when it was scheduled (-rate); sent in the closed loop
}

// shared is what the workers coordinate through.
type shared struct {
	o        options
	opts     []byte // BEP 41 option list
	issued   atomic.Int64
	start    time.Time
	deadline time.Time
	v6       bool
}

// claim reserves one request of the budget; k is its number (in -fill mode
// it names the peer to announce).
func (sh *shared) claim() (k int64, ok bool) {
	k = sh.issued.Add(1) - 1
	return k, k < sh.o.requests
}

type worker struct {
	mu      sync.Mutex // -rate: the pacer and the reader share the slots
	pend    int        // -rate: requests built in wbuf, not yet written
	taken   int        // -rate: the slot take reserved
	sh      *shared
	id      int
	conn    *net.UDPConn
	bc      batchConn
	rng     *rand.Rand
	slots   []slot
	free    []int
	seq     uint32
	connID  uint64
	connAt  time.Time
	connOut bool // a connect is in flight
	done    bool // budget exhausted
	st      stats
	wbuf    []ipv4.Message
	rbuf    []ipv4.Message
	hashes  [][20]byte
	rdl     time.Time // read deadline last set
	stamps  bool      // the kernel stamps this socket's datagrams
}

func load(o options, raddr *net.UDPAddr) (*result, error) {
	sh := &shared{o: o, opts: nil, v6: raddr.IP.To4() == nil}
	if o.passkey != "" {
		sh.opts = urlDataOption("/" + o.passkey)
	}
	workers := make([]*worker, o.sockets)
	for i := range workers {
		conn, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			for _, w := range workers[:i] {
				w.conn.Close()
			}
			return nil, fmt.Errorf("socket %d: %w", i, err)
		}
		_ = conn.SetReadBuffer(1 << 20)
		_ = conn.SetWriteBuffer(1 << 20)
		workers[i] = newWorker(sh, i, conn)
		if o.rate > 0 && enableRxStamps(conn) == nil {
			workers[i].stamps = true
			for j := range workers[i].rbuf {
				workers[i].rbuf[j].OOB = make([]byte, rxStampSpace)
			}
		}
	}
	defer func() {
		for _, w := range workers {
			w.conn.Close()
		}
	}()

	// Connect every socket first; the clock starts once all have an id.
	var wg sync.WaitGroup
	ok := make([]bool, len(workers))
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok[i] = w.connect()
		}()
	}
	wg.Wait()
	res := &result{}
	var live []*worker
	for i, w := range workers {
		if ok[i] {
			live = append(live, w)
		} else {
			res.connFails++
		}
	}
	if len(live) == 0 {
		return nil, fmt.Errorf("no socket got a connection id from %s (is the tracker up?)", raddr)
	}
	if o.rate > 0 {
		return paced(sh, live, res), nil
	}
	sh.start = time.Now()
	sh.deadline = sh.start.Add(o.duration)
	end := make([]time.Time, len(live))
	for i, w := range live {
		wg.Add(1)
		go func() {
			defer wg.Done()
			end[i] = w.loop()
		}()
	}
	wg.Wait()
	last := sh.start
	for i, w := range live {
		res.add(&w.st)
		if end[i].After(last) {
			last = end[i]
		}
	}
	res.elapsed = last.Sub(sh.start)
	res.sockets = len(live)
	for _, w := range workers {
		if !ok[w.id] {
			res.add(&w.st) // its errors still count
		}
	}
	return res, nil
}

func newWorker(sh *shared, id int, conn *net.UDPConn) *worker {
	w := &worker{
		sh:     sh,
		id:     id,
		conn:   conn,
		rng:    rand.New(rand.NewPCG(sh.o.seed, uint64(id)+1)),
		slots:  make([]slot, sh.o.window),
		wbuf:   make([]ipv4.Message, sh.o.window),
		rbuf:   make([]ipv4.Message, max(sh.o.window, 8)),
		hashes: make([][20]byte, sh.o.scrapeHashes),
		st:     stats{errors: map[string]uint64{}},
	}
	if sh.v6 {
		w.bc = ipv6.NewPacketConn(conn)
	} else {
		w.bc = ipv4.NewPacketConn(conn)
	}
	for i := range w.slots {
		w.free = append(w.free, i)
	}
	for i := range w.wbuf {
		w.wbuf[i].Buffers = [][]byte{make([]byte, 0, 256)}
	}
	for i := range w.rbuf {
		w.rbuf[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	return w
}

// txID puts the slot in the low byte and a sequence number above it, so a
// late reply to an expired request never matches the slot's next request.
func (w *worker) nextTx(slotIdx int) uint32 {
	w.seq++
	return w.seq<<8 | uint32(slotIdx)
}

// connect gets the first connection id: up to 3 tries of -timeout each.
func (w *worker) connect() bool {
	buf := make([]byte, 2048)
	for try := 0; try < 3; try++ {
		tx := w.nextTx(0)
		if _, err := w.conn.Write(appendConnect(nil, tx)); err != nil {
			w.st.sendErrors++
			time.Sleep(50 * time.Millisecond)
			continue
		}
		_ = w.conn.SetReadDeadline(time.Now().Add(w.sh.o.timeout))
		for {
			n, err := w.conn.Read(buf)
			if err != nil {
				if !isTimeout(err) {
					w.st.sockErrors++
					time.Sleep(50 * time.Millisecond)
				}
				break
			}
			r, err := parseReply(buf[:n], w.sh.v6)
			if err != nil || r.TxID != tx {
				continue // stale or foreign
			}
			if r.Action != actionConnect {
				w.st.errors["connect: "+r.Message]++
				break
			}
			w.connID, w.connAt = r.ConnID, time.Now()
			w.st.connects++
			return true
		}
	}
	return false
}

// loop runs the window until the deadline, or until the budget is spent and
// every request is answered or timed out. It returns when it stopped.
func (w *worker) loop() time.Time {
	for {
		now := time.Now()
		if !now.Before(w.sh.deadline) {
			return w.sh.deadline
		}
		w.expire(now)
		if w.done && len(w.free) == len(w.slots) {
			return now
		}
		w.send(now)
		if w.done && len(w.free) == len(w.slots) {
			return now
		}
		// Block for replies, at most readWait and never past the deadline.
		dl := now.Add(readWait)
		if dl.After(w.sh.deadline) {
			dl = w.sh.deadline
		}
		if w.rdl.Sub(now) < readWait/2 || w.rdl.After(w.sh.deadline) {
			_ = w.conn.SetReadDeadline(dl)
			w.rdl = dl
		}
		n, err := w.bc.ReadBatch(w.rbuf, 0)
		if err != nil {
			if !isTimeout(err) {
				w.st.sockErrors++
				if errors.Is(err, net.ErrClosed) {
					return time.Now()
				}
				time.Sleep(10 * time.Millisecond) // e.g. ECONNREFUSED: tracker gone
			}
			continue
		}
		at := time.Now()
		for i := range n {
			w.receive(w.rbuf[i].Buffers[0][:w.rbuf[i].N], at, time.Time{})
		}
	}
}

// expire frees the slots of requests older than -timeout.
func (w *worker) expire(now time.Time) {
	for i := range w.slots {
		s := &w.slots[i]
		if s.kind != kindFree && now.Sub(s.sent) >= w.sh.o.timeout {
			if s.kind == kindConnect {
				w.connOut = false
			}
			w.st.timeouts++
			if w.sh.o.rate > 0 && s.kind != kindConnect {
				// Open loop: an unanswered request counts in the percentiles
				// as having waited until now (dropping it would flatter the tail).
				w.record(s, now, time.Time{})
			}
			s.kind = kindFree
			w.free = append(w.free, i)
		}
	}
}

// send fills the free slots with requests and writes them in one batch.
func (w *worker) send(now time.Time) {
	o := &w.sh.o
	k := 0
fill:
	for len(w.free) > 0 && k < len(w.wbuf) {
		idx := w.free[len(w.free)-1]
		tx := w.nextTx(idx)
		b := w.wbuf[k].Buffers[0][:0]
		var kind uint8
		switch {
		case !w.connOut && now.Sub(w.connAt) >= connIDRefresh:
			b = appendConnect(b, tx)
			kind = kindConnect
			w.connOut = true
		default:
			if w.done {
				break fill
			}
			num, ok := w.sh.claim()
			if !ok {
				w.done = true
				break fill
			}
			if o.scrapeEvery > 0 && (num+1)%int64(o.scrapeEvery) == 0 && !o.isChurn(num) {
				for h := range w.hashes {
					w.hashes[h] = InfoHash(o.model.PickTorrent(w.rng))
				}
				b = appendScrape(b, w.connID, tx, w.hashes, w.sh.opts)
				kind = kindScrape
			} else {
				b = w.appendAnnounce(b, tx, num, now)
				kind = kindAnnounce
			}
		}
		w.free = w.free[:len(w.free)-1]
		w.slots[idx] = slot{kind: kind, tx: tx, sent: now, due: now}
		w.wbuf[k].Buffers[0] = b
		k++
	}
	for sent := 0; sent < k; {
		n, err := w.bc.WriteBatch(w.wbuf[sent:k], 0)
		if err != nil || n <= 0 {
			// The unsent requests never left: give their slots back.
			for i := sent; i < k; i++ {
				w.release(binaryTx(w.wbuf[i].Buffers[0]))
			}
			w.st.sendErrors += uint64(k - sent)
			time.Sleep(time.Millisecond)
			return
		}
		sent += n
	}
}

// binaryTx reads the transaction id of a request packet.
func binaryTx(p []byte) uint32 {
	return uint32(p[12])<<24 | uint32(p[13])<<16 | uint32(p[14])<<8 | uint32(p[15])
}

func (w *worker) release(tx uint32) {
	idx := int(tx & 0xff)
	if idx < len(w.slots) && w.slots[idx].kind != kindFree && w.slots[idx].tx == tx {
		if w.slots[idx].kind == kindConnect {
			w.connOut = false
		}
		w.slots[idx].kind = kindFree
		w.free = append(w.free, idx)
	}
}

func (w *worker) appendAnnounce(b []byte, tx uint32, num int64, now time.Time) []byte {
	o := &w.sh.o
	var i, j int
	event := uint32(eventNone)
	switch {
	case o.fill:
		// Torrent-major interleave: swarms grow evenly.
		i, j = int(num%int64(o.model.Torrents)), int(num/int64(o.model.Torrents))
		event = eventStarted
	case o.churn > 0:
		var n int64
		n, event = o.churnPeer(num, w.rng)
		i, j = int(n%int64(o.model.Torrents)), int(n/int64(o.model.Torrents))
	default:
		i, j = o.model.PickTorrent(w.rng), w.rng.IntN(o.model.Peers)
	}
	a := Announce{
		ConnID:   w.connID,
		TxID:     tx,
		InfoHash: InfoHash(i),
		PeerID:   PeerID(o.peerPrefix, i, j),
		Event:    event,
		Key:      uint32(i)*2654435761 ^ uint32(j),
		NumWant:  uint32(o.numWant),
		Port:     PeerPort(j % maxPeersPerTorrent),
	}
	// Cumulative counters that grow with time, as a client's do.
	grown := uint64(now.Sub(w.sh.start)/time.Millisecond) * 1024
	if IsSeeder(i, j) {
		a.Uploaded = 1<<30 + grown
		a.Downloaded = 1 << 30
	} else {
		a.Left = 1<<30 - min(grown, 1<<29)
		a.Downloaded = min(grown, 1<<29)
		a.Uploaded = grown / 4
	}
	return appendAnnounce(b, &a, w.sh.opts)
}

// receive matches one reply to its slot and counts it.
func (w *worker) receive(p []byte, at, kat time.Time) {
	r, err := parseReply(p, w.sh.v6)
	if err != nil && len(p) < 8 {
		w.st.malformed++
		return
	}
	idx := int(r.TxID & 0xff)
	if idx >= len(w.slots) || w.slots[idx].kind == kindFree || w.slots[idx].tx != r.TxID {
		w.st.late++ // answered after its timeout, or not ours
		return
	}
	s := w.slots[idx]
	w.slots[idx].kind = kindFree
	w.free = append(w.free, idx)
	if s.kind == kindConnect {
		w.connOut = false
	}
	if err != nil {
		w.st.malformed++
		return
	}
	if r.Action == actionError {
		w.st.errors[r.Message]++
		if s.kind != kindConnect && isConnIDError(r.Message) {
			w.connAt = time.Time{} // get a new connection id
		}
		return
	}
	switch {
	case s.kind == kindConnect && r.Action == actionConnect:
		w.connID, w.connAt = r.ConnID, at
		w.st.connects++
	case s.kind == kindAnnounce && r.Action == actionAnnounce:
		w.st.announces++
		w.st.peers += uint64(r.Peers)
		w.record(&s, at, kat)
	case s.kind == kindScrape && r.Action == actionScrape:
		w.st.scrapes++
		w.record(&s, at, kat)
	default:
		w.st.malformed++
	}
}

// record counts the latency of s answered (or given up) at at; kat is the
// kernel's receive stamp (zero: none, as for a request given up, which
// then counts with at in the stamped percentiles too).
func (w *worker) record(s *slot, at, kat time.Time) {
	d := at.Sub(s.due)
	w.st.hist.record(d)
	w.st.svc.record(at.Sub(s.sent))
	if w.stamps {
		if kat.IsZero() {
			kat = at
		} else {
			w.st.stamped++
		}
		w.st.kern.record(max(kat.Sub(s.due), 0))
	}
	if w.sh.o.slow > 0 && d > w.sh.o.slow {
		w.st.slow[s.due.UnixNano()%1e9*slowBuckets/1e9]++
	}
}

func isConnIDError(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "connection id") || strings.Contains(m, "connection_id")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, syscall.EAGAIN)
}
