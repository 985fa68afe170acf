package rewards

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seedpay/seedpay/internal/redistest"
)

// BenchmarkAccount measures accounting throughput and the redis-server CPU
// it costs per event (from INFO cpu, so other load on the machine does not
// count), with batches of 1000 seeding sessions each 60 s after the
// previous: 100 users x 10 torrents, the same with every announce carrying
// its client's address (as real announces do: the per-torrent address sets
// are written too), and one user with 100 torrents x 10 clients (as
// bench/compare.sh: everything one user's). SEEDPAY_BENCH_CMDSTATS=1 logs
// the redis-server's INFO commandstats of each shape.
func BenchmarkAccount(b *testing.B) {
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) {
			e := newAcctEnv(b)
			batch := shape.events()
			if _, err := e.a.Account(e.ctx, batch, acAllOpen, nil); err != nil {
				b.Fatal(err)
			}
			if os.Getenv("SEEDPAY_BENCH_CMDSTATS") != "" {
				e.rdb.ConfigResetStat(e.ctx)
			}
			// Clients of one torrent seed at once: one earns, the rest are
			// credited nothing (once per second per user and torrent).
			cpu0 := redisCPU(b, e)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range batch {
					batch[j].Time += 60
					batch[j].Uploaded += 1000
				}
				out, err := e.a.Account(e.ctx, batch, acAllOpen, nil)
				if err != nil {
					b.Fatal(err)
				}
				if out[0].Seconds != 60 {
					b.Fatalf("%+v", out[0])
				}
			}
			b.StopTimer()
			n := float64(b.N * len(batch))
			b.ReportMetric(n/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric((redisCPU(b, e)-cpu0)*1e6/n, "redis-µs/event")
			if os.Getenv("SEEDPAY_BENCH_CMDSTATS") != "" {
				var stats []string
				for _, line := range strings.Split(e.rdb.Info(e.ctx, "commandstats").Val(), "\n") {
					if name, rest, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
						calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
						_, usec, _ := strings.Cut(rest, "usec=")
						usec, _, _ = strings.Cut(usec, ",")
						stats = append(stats, strings.TrimPrefix(name, "cmdstat_")+" "+calls+" calls "+usec+" µs")
					}
				}
				b.Logf("%d events: %s", b.N*len(batch), strings.Join(stats, "; "))
			}
		})
	}
}

var benchShapes = []benchShape{
	{"100users-10torrents", 100, 10, 1, false},
	{"100users-10torrents-ip", 100, 10, 1, true},
	{"1user-100torrents-10clients", 1, 100, 10, false},
	{"1000users-1torrent", 1000, 1, 1, false}, // nothing to sum per user: local mode's worst case
}

type benchShape struct {
	name              string
	users, torrents   int
	clientsPerTorrent int
	ip                bool
}

func (shape benchShape) events() []Event {
	var batch []Event
	for u := range shape.users {
		for t := range shape.torrents {
			for c := range shape.clientsPerTorrent {
				ev := acctEv(fmt.Sprintf("user%03d", u), byte(t), byte(c), acT0, 0, 0, 0)
				if shape.ip {
					ev.IP = netip.AddrFrom4([4]byte{10, byte(u), byte(t), byte(c)}).As16()
				}
				batch = append(batch, ev)
			}
		}
	}
	return batch
}

// BenchmarkLocalAccount is BenchmarkAccount's shapes in local session mode:
// every event applied in memory, then one flush per batch (each user's
// aggregate, one flush.lua call per user). redis-µs/event is the
// redis-server's CPU per event, ns/op the tracker side (Apply and Flush).
func BenchmarkLocalAccount(b *testing.B) {
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) {
			rdb := redistest.Start(b).Client(b)
			e := newLocalEnv(b, rdb)
			batch := shape.events()
			apply := func() {
				for j := range batch {
					if out := e.a.Apply(&batch[j], acAllOpen, nil); out.Code == CodeError {
						b.Fatalf("%+v", out)
					}
				}
				e.flush()
			}
			apply()
			cpu0 := redisCPU(b, &acctEnv{ctx: e.ctx, rdb: rdb})
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range batch {
					batch[j].Time += 60
					batch[j].Uploaded += 1000
				}
				e.now = time.Unix(batch[0].Time, 0)
				apply()
			}
			b.StopTimer()
			n := float64(b.N * len(batch))
			b.ReportMetric(n/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric((redisCPU(b, &acctEnv{ctx: e.ctx, rdb: rdb})-cpu0)*1e6/n, "redis-µs/event")
			if got := rdb.HGet(e.ctx, KeyUserEpoch("user000", acE), "seed_s").Val(); got == "" || got == "0" {
				b.Fatalf("nothing credited: seed_s %q", got)
			}
		})
	}
}

// redisCPU is the redis-server's CPU seconds so far (user + system).
func redisCPU(b *testing.B, e *acctEnv) float64 {
	var sum float64
	for _, line := range strings.Split(e.rdb.Info(e.ctx, "cpu").Val(), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(err)
			}
			sum += f
		}
	}
	return sum
}

// BenchmarkLocalSessionMemory is the heap a LocalAccountant holds per live
// session in local mode: b.N users each seeding one torrent with one client
// (the worst case: no record shared). Run with -benchtime 1000000x for the
// figure at a million sessions.
func BenchmarkLocalSessionMemory(b *testing.B) {
	a, err := NewLocalAccountant(acctConfig())
	if err != nil {
		b.Fatal(err)
	}
	users := make([]string, b.N)
	for i := range users {
		users[i] = fmt.Sprintf("user%07d", i) // the registry holds these strings anyway
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev := acctEv(users[i], byte(i), 1, acT0, 0, 0, 0)
		ev.InfoHash[1], ev.InfoHash[2] = byte(i>>8), byte(i>>16)
		ev.IP = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).As16()
		if out := a.Apply(&ev, acAllOpen, nil); out.Code != CodeNew {
			b.Fatalf("%+v", out)
		}
	}
	b.StopTimer()
	a.take(map[string]*userAgg{}) // what a flush takes away
	runtime.GC()
	runtime.ReadMemStats(&after)
	if live := a.Sweep(acT0, 0, a.Shards()); live != b.N {
		b.Fatalf("%d sessions live, want %d", live, b.N)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "heap-B/session")
}
