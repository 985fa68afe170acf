// Package account is the PostHook that feeds announces to the reward
// ledger. The hook only copies a fixed-size event into a buffer; a flusher
// sends the buffered events to Redis in one pipelined batch per interval.
package account

import (
	"context"
	"encoding/binary"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/middleware/auth"
	"github.com/seedpay/seedpay/middleware/registry"
	"github.com/seedpay/seedpay/rewards"
)

// Sink receives batches of events; rewards.Accountant implements it through
// the Ledger adapter in this package.
type Sink interface {
	Account(ctx context.Context, events []rewards.Event) error
}

// Torrents tells the size of a registered torrent.
type Torrents interface {
	Torrent(ih bittorrent.InfoHash) (*registry.Entry, bool)
}

// shard is one buffer; announces spread over shards by peer id so cores
// rarely meet on a lock (Go exposes no CPU id to index by).
type shard struct {
	mu     sync.Mutex
	events []rewards.Event
	_      [40]byte // keep shards on separate cache lines
}

// Hook is the accounting PostHook plus its flusher. In Redis session mode
// (New) it buffers events for a Sink; in local session mode (NewLocal) it
// accounts each announce in memory right away (rewards.LocalAccountant)
// and its flusher writes aggregates.
type Hook struct {
	local   *rewards.LocalAccountant
	flusher *rewards.LocalFlusher
	epoch   rewards.EpochConfig
	pools   func(infoHash [20]byte) []string
	codes   [6]prometheus.Counter // local mode: events by outcome code
	// sec is the Unix second, kept by Run in local mode: accounting counts
	// whole seconds, and time.Now was a fifth of the hook's cost.
	sec atomic.Int64

	shards   []shard
	capacity int
	torrents Torrents
	sink     Sink
	interval time.Duration
	log      *zap.Logger
	now      func() time.Time

	buffered prometheus.Counter
	dropped  prometheus.Counter
	flushed  prometheus.Counter
	failed   prometheus.Counter
	latency  prometheus.Histogram
}

var _ middleware.Hook = (*Hook)(nil)

// Config sizes the buffers and the flush cadence.
type Config struct {
	Shards        int           // 0: GOMAXPROCS x 4
	ShardCapacity int           // events per shard before drops
	FlushInterval time.Duration // how often events go to Redis
}

// New returns the hook; call Run to flush.
func New(cfg Config, torrents Torrents, sink Sink, reg prometheus.Registerer, log *zap.Logger) (*Hook, error) {
	if cfg.Shards <= 0 {
		cfg.Shards = 4 * maxProcs()
	}
	if cfg.ShardCapacity <= 0 {
		cfg.ShardCapacity = 1024
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	h := &Hook{
		shards:   make([]shard, cfg.Shards),
		capacity: cfg.ShardCapacity,
		torrents: torrents,
		sink:     sink,
		interval: cfg.FlushInterval,
		log:      log,
		now:      time.Now,
		buffered: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "accounting", Name: "events_buffered_total", Help: "Announces buffered for accounting."}),
		dropped:  prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "accounting", Name: "events_dropped_total", Help: "Announces not buffered because the buffer was full; the next announce of the session recovers the credit from cumulative counters."}),
		flushed:  prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "accounting", Name: "events_flushed_total", Help: "Events written to Redis."}),
		failed:   prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "accounting", Name: "flush_failures_total", Help: "Flushes that failed; their events are recovered by the sessions' next announces."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "seedpay", Subsystem: "accounting", Name: "flush_duration_seconds", Help: "Time to write one batch to Redis.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	for i := range h.shards {
		h.shards[i].events = make([]rewards.Event, 0, cfg.ShardCapacity)
	}
	for _, c := range []prometheus.Collector{h.buffered, h.dropped, h.flushed, h.failed, h.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// NewLocal returns the hook of local session mode: each announce is
// accounted by acct in memory; Run runs flusher. pools names the pools
// covering a torrent (nil: the global pool only).
func NewLocal(torrents Torrents, acct *rewards.LocalAccountant, flusher *rewards.LocalFlusher, epoch rewards.EpochConfig,
	pools func(infoHash [20]byte) []string, reg prometheus.Registerer, log *zap.Logger) (*Hook, error) {
	h := &Hook{local: acct, flusher: flusher, epoch: epoch, pools: pools, torrents: torrents, log: log}
	h.now = h.second
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "accounting", Name: "events_total",
		Help: "Announces accounted in memory (local session mode), by outcome: new, accounted, reset, capped (over max_peers_per_torrent), late, error."}, []string{"outcome"})
	for c := range h.codes {
		h.codes[c] = events.WithLabelValues(rewards.Code(c).String())
	}
	if err := reg.Register(events); err != nil {
		return nil, err
	}
	return h, nil
}

// HandleAnnounce accounts (local mode) or buffers (Redis mode) the
// announce of an authenticated user on a registered torrent. It never waits
// on I/O and never fails the announce.
func (h *Hook) HandleAnnounce(ctx context.Context, req *bittorrent.AnnounceRequest, resp *bittorrent.AnnounceResponse) (context.Context, error) {
	u, ok := auth.UserFromContext(ctx)
	if !ok {
		return ctx, nil
	}
	t, ok := h.torrents.Torrent(req.InfoHash)
	if !ok {
		return ctx, nil // unregistered torrents earn nothing
	}
	now := h.now()
	ev := rewards.Event{
		User:       u.ID,
		InfoHash:   req.InfoHash,
		PeerID:     req.Peer.ID,
		Size:       t.Size,
		Seeders:    resp.Complete,
		Uploaded:   req.Uploaded,
		Downloaded: req.Downloaded,
		Left:       req.Left,
		Stopped:    req.Event == bittorrent.Stopped,
		IP:         ip16(req.IP.IP),
		Time:       now.Unix(),
	}
	if h.local != nil {
		var pools []string
		if h.pools != nil {
			pools = h.pools(req.InfoHash)
		}
		o := h.local.Apply(&ev, h.epoch.MinOpenEpoch(now), pools)
		h.codes[min(int(o.Code), len(h.codes)-1)].Inc()
		return ctx, nil
	}
	s := &h.shards[shardOf(req.Peer.ID)%uint32(len(h.shards))]
	s.mu.Lock()
	if len(s.events) == cap(s.events) {
		s.mu.Unlock()
		h.dropped.Inc()
		return ctx, nil
	}
	s.events = append(s.events, ev)
	s.mu.Unlock()
	h.buffered.Inc()
	return ctx, nil
}

// HandleScrape does nothing: scrapes earn nothing.
func (h *Hook) HandleScrape(ctx context.Context, _ *bittorrent.ScrapeRequest, _ *bittorrent.ScrapeResponse) (context.Context, error) {
	return ctx, nil
}

// Run flushes every interval until ctx ends, then flushes once more (and,
// in local mode, saves the sessions).
func (h *Hook) Run(ctx context.Context) error {
	if h.flusher != nil {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		go func() {
			for {
				h.sec.Store(time.Now().Unix())
				select {
				case <-ctx.Done():
					h.sec.Store(0)
					return
				case <-tick.C:
				}
			}
		}()
		return h.flusher.Run(ctx)
	}
	t := time.NewTicker(h.interval)
	defer t.Stop()
	spare := make([]rewards.Event, 0, h.capacity)
	batch := make([]rewards.Event, 0, h.capacity*len(h.shards))
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			h.Flush(fctx, &spare, &batch)
			cancel()
			return nil
		case <-t.C:
			h.Flush(ctx, &spare, &batch)
		}
	}
}

// Flush sends everything buffered now. spare and batch are reused buffers.
func (h *Hook) Flush(ctx context.Context, spare, batch *[]rewards.Event) {
	*batch = (*batch)[:0]
	for i := range h.shards {
		if cap(*spare) < h.capacity {
			*spare = make([]rewards.Event, 0, h.capacity)
		}
		s := &h.shards[i]
		s.mu.Lock()
		full := s.events
		s.events = (*spare)[:0]
		s.mu.Unlock()
		*batch = append(*batch, full...)
		clear(full) // drop the user id strings for the GC
		*spare = full
	}
	if len(*batch) == 0 {
		return
	}
	start := time.Now()
	err := h.sink.Account(ctx, *batch)
	h.latency.Observe(time.Since(start).Seconds())
	if err != nil {
		h.failed.Inc()
		h.log.Warn("accounting flush failed; the sessions' next announces recover the credit",
			zap.Int("events", len(*batch)), zap.Error(err))
		return
	}
	h.flushed.Add(float64(len(*batch)))
}

// second is the time to the second from the clock Run keeps (time.Now
// when Run is not running).
func (h *Hook) second() time.Time {
	if s := h.sec.Load(); s != 0 {
		return time.Unix(s, 0)
	}
	return time.Now()
}

func maxProcs() int { return runtime.GOMAXPROCS(0) }

func ip16(ip net.IP) (out [16]byte) {
	if v := ip.To16(); v != nil {
		copy(out[:], v)
	}
	return out
}

// shardOf mixes all 20 bytes of the peer id: clients fill the tail with
// anything from random bytes to decimal digits, so no single byte spreads
// announces over the shards (a benchmark with decimal ids put them all in one).
func shardOf(id bittorrent.PeerID) uint32 {
	x := binary.LittleEndian.Uint64(id[0:]) ^ binary.LittleEndian.Uint64(id[8:])*0x9e3779b97f4a7c15 ^ uint64(binary.LittleEndian.Uint32(id[16:]))*0xc2b2ae3d27d4eb4f
	x ^= x >> 29
	x *= 0xbf58476d1ce4e5b9
	return uint32(x >> 32)
}
