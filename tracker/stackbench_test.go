package tracker

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedpay/seedpay/middleware/auth"
	"github.com/seedpay/seedpay/middleware/registry"
	"github.com/seedpay/seedpay/rewards"
)

// BenchmarkStackUDPAnnounce runs announces through the whole tracker as
// `seedpay serve` wires it (real UDP sockets on loopback, batched I/O,
// tracker.Logic, auth, peer store, completion counter), with rewards
// accounting off and on in each session mode: local (the default: every
// announce accounted in memory, aggregates flushed to a real redis-server)
// and redis (the PostHook buffers every announce, its flusher runs
// account.lua); the final flush is inside the timed region. 4 clients keep 8
// announces each in flight over 100 torrents x 100 peers (75 % seeders,
// numwant 30), all of one user (as bench/compare.sh). ns/op is wall time
// per announce of the whole machine (tracker, Redis and clients share the
// cores): on/off is the throughput ratio. cpu-ns/op is this process's CPU
// (tracker and clients, not Redis) per announce. "dropped" counts accounting
// events lost to full buffers (must stay 0 for the ratio to mean anything).
func BenchmarkStackUDPAnnounce(b *testing.B) {
	for _, acct := range []string{"", rewards.SessionsLocal, rewards.SessionsRedis} {
		name := "accounting-off"
		if acct != "" {
			name = "accounting-" + acct
		}
		b.Run(name, func(b *testing.B) { benchStack(b, acct, nil) })
	}
}

// BenchmarkStackUDPIO is BenchmarkStackUDPAnnounce without accounting in
// each UDP I/O mode: one recvfrom/sendto per datagram or recvmmsg/sendmmsg
// batches, on one socket or two SO_REUSEPORT sockets (workers: one per CPU,
// spread over the sockets).
func BenchmarkStackUDPIO(b *testing.B) {
	for _, mode := range []struct {
		name           string
		sockets, batch int
	}{
		{"single", 1, 1},
		{"batch8", 1, 8},
		{"batch32", 1, 32},
		{"reuseport2-single", 2, 1},
		{"reuseport2-batch8", 2, 8},
		{"reuseport2-batch32", 2, 32},
	} {
		b.Run(mode.name, func(b *testing.B) {
			benchStack(b, "", func(c *Config, _ *auth.Config) { c.UDPSockets, c.UDPBatch = mode.sockets, mode.batch })
		})
	}
}

func benchStack(b *testing.B, accounting string, mutate func(*Config, *auth.Config)) {
	const (
		torrents = 100
		peers    = 100
		clients  = 4
		window   = 8
	)
	s := newStackWith(b, mutate, accounting)
	u := s.user(b, "bench")
	ihs := make([]bittorrent.InfoHash, torrents)
	for i := range ihs {
		ihs[i] = bittorrent.InfoHash(sha1.Sum([]byte(fmt.Sprint("seedpay-bench-", i))))
		if _, err := s.store.PutTorrent(context.Background(), registry.Torrent{InfoHash: ihs[i], Size: 1 << 30, Name: "t"}); err != nil {
			b.Fatal(err)
		}
	}
	s.sync(b)
	// Each client owns a share of the peers; packets are built once and
	// reused (same transaction id: replies are counted, not matched).
	cs := make([]benchClient, clients)
	for k := range cs {
		c := s.udp(b)
		for i := k; i < torrents*peers; i += clients {
			t, p := i/peers, i%peers
			a := announce{peerID: fmt.Sprintf("-SB0001-%06d%06d", t, p), ih: ihs[t], port: uint16(1024 + p), left: 0, numwant: 30}
			if (t+p)%4 == 0 {
				a.left = 1000
			}
			cs[k].pkts = append(cs[k].pkts, c.announcePacket(a, "/"+u.Passkey))
		}
		cs[k].c = c
	}
	run := func(n int) (lost int) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for k := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l := cs[k].loop(n/clients, window)
				mu.Lock()
				lost += l
				mu.Unlock()
			}()
		}
		wg.Wait()
		return lost
	}
	run(torrents * peers) // every peer in its swarm, every session started
	s.flushOnce(b)
	cpu0 := processCPU(b)
	b.ResetTimer()
	lost := run(b.N)
	s.stopFlusher()
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(lost), "lost")
	switch accounting {
	case rewards.SessionsRedis:
		b.ReportMetric(metricSum(b, s.reg, "seedpay_accounting_events_dropped_total"), "dropped")
	case rewards.SessionsLocal:
		if n := metricSum(b, s.reg, "seedpay_accounting_events_total"); n < float64(b.N) {
			b.Fatalf("%v announces accounted, want at least %d", n, b.N)
		}
	}
}

// flushOnce waits for one accounting flush (a no-op without accounting).
func (s *stack) flushOnce(t testing.TB) {
	if metricSum(t, s.reg, "seedpay_accounting_events_buffered_total") == 0 {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for metricSum(t, s.reg, "seedpay_accounting_events_flushed_total") < metricSum(t, s.reg, "seedpay_accounting_events_buffered_total") {
		if time.Now().After(deadline) {
			t.Fatal("accounting did not flush in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func metricSum(t testing.TB, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// benchClient is one closed-loop load socket with its prebuilt packets.
type benchClient struct {
	c    *udpClient
	pkts [][]byte
}

// loop sends n announces, keeping window in flight, and returns how many
// got no reply within a second.
func (cl *benchClient) loop(n, window int) (lost int) {
	conn := cl.c.conn
	buf := make([]byte, 2048)
	next, inflight := 0, 0
	for sent := 0; sent < n || inflight > 0; {
		for inflight < window && sent < n {
			if _, err := conn.Write(cl.pkts[next]); err != nil {
				cl.c.t.Error(err)
				return lost
			}
			next = (next + 1) % len(cl.pkts)
			sent++
			inflight++
		}
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		m, err := conn.Read(buf)
		if err != nil {
			lost += inflight // timed out: count the window lost, go on
			inflight = 0
			continue
		}
		if m < 8 || binary.BigEndian.Uint32(buf) != udpAnnounce {
			cl.c.t.Errorf("reply %q", buf[:m])
			return lost
		}
		inflight--
	}
	return lost
}
