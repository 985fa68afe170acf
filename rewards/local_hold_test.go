package rewards

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/seedpay/seedpay/internal/redistest"
)

// holdFixture is a LocalAccountant holding many live sessions (users x
// torrents, one client each), with the keys of every shard, for measuring
// what the flusher's background work costs concurrent announces.
type holdFixture struct {
	a       *LocalAccountant
	keys    [][]utKey // by shard
	all     []utKey
	users   int
	perUser int
}

func newHoldFixture(tb testing.TB, users, perUser int) *holdFixture {
	tb.Helper()
	a, err := NewLocalAccountant(acctConfig())
	if err != nil {
		tb.Fatal(err)
	}
	fx := &holdFixture{a: a, keys: make([][]utKey, a.Shards()), users: users, perUser: perUser}
	for u := range users {
		user := fmt.Sprintf("user%07d", u)
		for t := range perUser {
			ev := acctEv(user, byte(t), 1, acT0, 0, 0, 0)
			ev.InfoHash[1], ev.InfoHash[2], ev.InfoHash[3] = byte(u), byte(u>>8), byte(u>>16)
			if o := a.Apply(&ev, acAllOpen, nil); o.Code != CodeNew {
				tb.Fatalf("fill: %+v", o)
			}
			k := utKey{user, ev.InfoHash}
			i := fx.shardIndex(k)
			fx.keys[i] = append(fx.keys[i], k)
			fx.all = append(fx.all, k)
		}
	}
	a.take(map[string]*userAgg{})
	return fx
}

func (fx *holdFixture) shardIndex(k utKey) int {
	sh := fx.a.shardOf(k.user, &k.ih)
	return int((uintptr(unsafe.Pointer(sh)) - uintptr(unsafe.Pointer(&fx.a.shards[0]))) / unsafe.Sizeof(fx.a.shards[0]))
}

// applier announces continuously (seeding, one more second each round of
// the records, so every announce earns credit and the aggregates fill)
// and times every Apply. busy, when >= 0, is the shard whose records it
// announces on; else it picks records at random.
type applier struct {
	fx    *holdFixture
	busy  atomic.Int64
	stop  atomic.Bool
	done  sync.WaitGroup
	lat   []time.Duration
	n     int
	clock int64
	gc0   uint32
}

func startApplier(fx *holdFixture) *applier {
	ap := &applier{fx: fx, lat: make([]time.Duration, 0, 1<<22)}
	ap.busy.Store(-1)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	ap.gc0 = ms.NumGC
	ap.done.Add(1)
	go ap.run()
	return ap
}

func (ap *applier) run() {
	defer ap.done.Done()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; !ap.stop.Load(); i++ {
		var k utKey
		if b := ap.busy.Load(); b >= 0 && len(ap.fx.keys[b]) > 0 {
			ks := ap.fx.keys[b]
			k = ks[rng.IntN(len(ks))]
		} else {
			k = ap.fx.all[rng.IntN(len(ap.fx.all))]
		}
		if i%len(ap.fx.all) == 0 {
			ap.clock++ // within max_gap: every announce earns
		}
		ev := Event{User: k.user, InfoHash: k.ih, Size: acSize, Seeders: acSeeders, Time: acT0 + ap.clock}
		ev.PeerID[0] = 1
		start := time.Now()
		ap.fx.a.Apply(&ev, acAllOpen, nil)
		d := time.Since(start)
		if len(ap.lat) < cap(ap.lat) {
			ap.lat = append(ap.lat, d)
		}
		ap.n++
	}
}

// finish stops the applier and reports its Apply latencies.
func (ap *applier) finish(b *testing.B) {
	ap.stop.Store(true)
	ap.done.Wait()
	if len(ap.lat) == 0 {
		return
	}
	slices.Sort(ap.lat)
	q := func(p float64) float64 { return float64(ap.lat[int(p*float64(len(ap.lat)-1))].Nanoseconds()) }
	b.ReportMetric(q(0.99), "apply-p99-ns")
	b.ReportMetric(q(0.9999), "apply-p9999-ns")
	b.ReportMetric(q(1), "apply-max-ns")
	b.ReportMetric(float64(ap.n)/float64(b.N), "applies/op")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.NumGC-ap.gc0)/float64(b.N), "gc/op")
}

// BenchmarkLocalApplyDuringBackground times Apply (an announce's
// accounting) while the flusher's periodic work runs, on an accountant of
// 1M live sessions (100k users x 10 torrents; 4096 per shard): what one
// announce may wait for a shard lock the background work holds. Each op is
// one unit of that work:
//
//   - sweep: Sweep of one shard with every session live (a scan that drops
//     nothing, the steady state); the applier announces on that very shard,
//     so apply-max-ns is the longest the sweep kept it waiting.
//   - take: the aggregates of every shard taken and merged per user (a flush
//     without its Redis writes).
//   - flush: LocalFlusher.Flush to a real redis-server (take, the calls'
//     arguments, the writes): its allocations are where a GC cycle comes
//     from.
//   - snapshot: LocalFlusher.Snapshot (every record serialized shard by
//     shard, written to Redis).
//
// go test ./rewards -run '^$' -bench LocalApplyDuringBackground -benchtime 20x
func BenchmarkLocalApplyDuringBackground(b *testing.B) {
	users, perUser := 100_000, 10
	if testing.Short() {
		users = 10_000
	}
	fx := newHoldFixture(b, users, perUser)
	b.Run("sweep", func(b *testing.B) {
		ap := startApplier(fx)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s := i % fx.a.Shards()
			ap.busy.Store(int64(s))
			fx.a.Sweep(acT0, s, 1)
			ap.busy.Store(-1)
		}
		b.StopTimer()
		ap.finish(b)
	})
	b.Run("take", func(b *testing.B) {
		ap := startApplier(fx)
		time.Sleep(50 * time.Millisecond) // some aggregates to take
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			m := make(map[string]*userAgg)
			fx.a.take(m)
		}
		b.StopTimer()
		ap.finish(b)
	})
	f := startedFlusher(b, fx.a)
	ctx := context.Background()
	b.Run("flush", func(b *testing.B) {
		ap := startApplier(fx)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			time.Sleep(20 * time.Millisecond) // aggregates of many users to write
			if err := f.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		ap.finish(b)
	})
	b.Run("snapshot", func(b *testing.B) {
		ap := startApplier(fx)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := f.Snapshot(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		ap.finish(b)
	})
}

// BenchmarkLocalFlushUsers is one flush of the aggregates of 10k users
// (each seeding 2 torrents, one address each) to a real redis-server: the
// Go side's allocations per flush are the garbage that starts GC cycles
// while announces run.
//
// go test ./rewards -run '^$' -bench LocalFlushUsers -benchmem
func BenchmarkLocalFlushUsers(b *testing.B) {
	const users, perUser = 10_000, 2
	fx := newHoldFixture(b, users, perUser)
	f := startedFlusher(b, fx.a)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j, k := range fx.all {
			ev := Event{User: k.user, InfoHash: k.ih, Size: acSize, Seeders: acSeeders, Time: acT0 + 1 + int64(i), Uploaded: uint64(i + 1)}
			ev.PeerID[0] = 1
			ev.IP[15], ev.IP[14] = byte(j), byte(j>>8)
			fx.a.Apply(&ev, acAllOpen, nil)
		}
		b.StartTimer()
		if err := f.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// startedFlusher is a started LocalFlusher for a on a fresh redis-server,
// its clock in the benchmarks' first open epoch.
func startedFlusher(b *testing.B, a *LocalAccountant) *LocalFlusher {
	b.Helper()
	rdb := redistest.Start(b).Client(b)
	cfg := acctConfig()
	f, err := NewLocalFlusher(rdb, a, cfg, LocalFlusherConfig{FlushInterval: time.Second}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	f.now = func() time.Time { return time.Unix(acT0, 0).Add(cfg.Epoch.Grace) }
	if err := f.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	return f
}
