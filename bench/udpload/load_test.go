package main

import (
	"bytes"
	"encoding/binary"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTracker is a minimal BEP 15 tracker on loopback that records what it
// was sent. dropEvery > 0 leaves every n-th announce unanswered.
type fakeTracker struct {
	conn      *net.UDPConn
	dropEvery int
	stallAt   int           // the stallAt-th announce holds the tracker for stall (set under mu)
	stall     time.Duration // before it is answered

	mu        sync.Mutex
	announces int
	dropped   int
	scrapes   int
	badConnID int
	urlData   map[string]int
	events    map[uint32]int
	peers     map[[20]byte]map[[20]byte]bool // info hash -> peer id -> seeder
	seen      map[[40]byte]int               // (info hash, peer id) -> announces
	ports     map[int]int                    // source port -> datagrams
	procs     map[int]int                    // GOMAXPROCS seen while answering -> announces
}

const fakeConnID = 0x1122334455667788

func startFake(t *testing.T, dropEvery int) *fakeTracker {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeTracker{conn: conn, dropEvery: dropEvery, urlData: map[string]int{}, events: map[uint32]int{},
		peers: map[[20]byte]map[[20]byte]bool{}, seen: map[[40]byte]int{}, ports: map[int]int{}, procs: map[int]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, addr, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			f.mu.Lock()
			f.ports[addr.Port]++
			f.mu.Unlock()
			if out := f.handle(buf[:n]); out != nil {
				_, _ = conn.WriteToUDP(out, addr)
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return f
}

func (f *fakeTracker) addr() string { return f.conn.LocalAddr().String() }

func (f *fakeTracker) handle(p []byte) []byte {
	be := binary.BigEndian
	if len(p) < 16 {
		return nil
	}
	act, tx := be.Uint32(p[8:]), be.Uint32(p[12:])
	f.mu.Lock()
	defer f.mu.Unlock()
	if act == actionConnect {
		return reply(actionConnect, tx, binary.BigEndian.AppendUint64(nil, fakeConnID))
	}
	if be.Uint64(p) != fakeConnID {
		f.badConnID++
		return reply(actionError, tx, []byte("bad connection id"))
	}
	switch act {
	case actionAnnounce:
		f.announces++
		f.procs[runtime.GOMAXPROCS(0)]++
		if f.stallAt > 0 && f.announces == f.stallAt {
			time.Sleep(f.stall) // nothing is read meanwhile: later requests queue
		}
		if f.dropEvery > 0 && f.announces%f.dropEvery == 0 {
			f.dropped++
			return nil
		}
		var ih, pid [20]byte
		copy(ih[:], p[16:36])
		copy(pid[:], p[36:56])
		f.urlData[urlDataOf(p[announceLen:])]++
		f.events[be.Uint32(p[80:])]++
		if f.peers[ih] == nil {
			f.peers[ih] = map[[20]byte]bool{}
		}
		f.peers[ih][pid] = be.Uint64(p[64:]) == 0
		f.seen[[40]byte(append(ih[:], pid[:]...))]++
		numWant := min(int(be.Uint32(p[92:])), 5)
		return reply(actionAnnounce, tx, u32(1800, 1, 2), make([]byte, 6*numWant))
	case actionScrape:
		f.scrapes++
		body := p[16:]
		var out []byte
		for len(body) >= 20 && body[0] != 2 {
			var ih [20]byte
			copy(ih[:], body[:20])
			s, l := 0, 0
			for _, seeder := range f.peers[ih] {
				if seeder {
					s++
				} else {
					l++
				}
			}
			out = append(out, u32(uint32(s), 0, uint32(l))...)
			body = body[20:]
		}
		f.urlData[urlDataOf(body)]++
		return reply(actionScrape, tx, out)
	}
	return reply(actionError, tx, []byte("unknown action"))
}

// urlDataOf reads a BEP 41 option list (test helper: 2 <len> <data> ..., 0).
func urlDataOf(opts []byte) string {
	var b bytes.Buffer
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0:
			return b.String()
		case 1:
			i++
		case 2:
			l := int(opts[i+1])
			b.Write(opts[i+2 : i+2+l])
			i += 2 + l
		default:
			return "?"
		}
	}
	return b.String()
}

func TestLoadAgainstFakeTracker(t *testing.T) {
	f := startFake(t, 400)
	res, out := f.run(t, "-sockets", "8", "-window", "4", "-duration", "20s",
		"-requests", "3030", "-timeout", "1s", "-torrents", "50", "-peers", "20", "-passkey", "PK123")
	f.mu.Lock()
	defer f.mu.Unlock()
	if res["announces"]+res["scrapes"]+res["timeouts"] != 3030 {
		t.Errorf("announces %d + scrapes %d + timeouts %d != 3030 requests", res["announces"], res["scrapes"], res["timeouts"])
	}
	// Every dropped announce times out; on a loaded machine a slow reply may
	// too (it then arrives late, or after the run).
	if res["timeouts"] < int64(f.dropped) || f.dropped == 0 {
		t.Errorf("timeouts %d, tracker dropped %d", res["timeouts"], f.dropped)
	}
	if res["scrapes"] != 30 || f.scrapes != 30 {
		t.Errorf("scrapes %d (tracker saw %d), want 3030/101 = 30", res["scrapes"], f.scrapes)
	}
	if f.urlData["/PK123"] != f.announces-f.dropped+f.scrapes || len(f.urlData) != 1 {
		t.Log(out)
		t.Errorf("URL data seen: %v", f.urlData)
	}
	if res["avg_peers"] != 5 || res["errors"] != 0 || f.badConnID != 0 {
		t.Errorf("avg peers %d errors %d bad connection ids %d", res["avg_peers"], res["errors"], f.badConnID)
	}
	if f.events[eventNone] != f.announces-f.dropped {
		t.Errorf("events %v", f.events)
	}
	seeders, total := 0, 0
	for _, ps := range f.peers {
		for _, s := range ps {
			total++
			if s {
				seeders++
			}
		}
	}
	if total > 50*20 || seeders*100/total < 65 || seeders*100/total > 85 {
		t.Errorf("%d peers, %d seeders", total, seeders)
	}
	if res["p50_us"] <= 0 || res["p99_us"] < res["p50_us"] {
		t.Errorf("latency p50 %d p99 %d", res["p50_us"], res["p99_us"])
	}
}

func TestFillAnnouncesEveryPeerOnceThenCensus(t *testing.T) {
	f := startFake(t, 0)
	res, _ := f.run(t, "-fill", "-sockets", "4", "-window", "8", "-duration", "20s",
		"-torrents", "20", "-peers", "30", "-numwant", "0")
	f.mu.Lock()
	if res["announces"] != 600 || len(f.seen) != 600 || f.events[eventStarted] != 600 || f.scrapes != 0 {
		t.Errorf("announces %d, distinct peers %d, started %d, scrapes %d", res["announces"], len(f.seen), f.events[eventStarted], f.scrapes)
	}
	for k, n := range f.seen {
		if n != 1 {
			t.Errorf("peer %q announced %d times", k[20:], n)
		}
	}
	f.mu.Unlock()

	res, _ = f.run(t, "-census", "-torrents", "20")
	if res["swarm_peers"] != 600 || res["seeders"] != 450 {
		t.Errorf("census: %v", res)
	}
}

func TestNoTrackerFailsFast(t *testing.T) {
	// A bound port with nobody reading: connects time out, the run fails.
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var out, errOut strings.Builder
	start := time.Now()
	code := run([]string{"-target", conn.LocalAddr().String(), "-sockets", "2", "-timeout", "50ms", "-duration", "1s"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "no socket got a connection id") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("took too long")
	}
}

// parseResult reads the integer part of each RESULT value.
// run runs udpload against the fake with args, fails the test unless it
// exits 0, and returns its RESULT fields and its output.
func (f *fakeTracker) run(t *testing.T, args ...string) (map[string]int64, string) {
	t.Helper()
	var out, errOut strings.Builder
	if code := run(append([]string{"-target", f.addr()}, args...), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errOut.String())
	}
	return parseResult(t, out.String()), out.String()
}

func parseResult(t *testing.T, out string) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "RESULT ") {
			continue
		}
		for _, kv := range strings.Fields(line)[1:] {
			k, v, _ := strings.Cut(kv, "=")
			v, _, _ = strings.Cut(v, ".")
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("RESULT %s: %v", kv, err)
			}
			m[k] = n
		}
		return m
	}
	t.Fatalf("no RESULT line in %q", out)
	return nil
}
