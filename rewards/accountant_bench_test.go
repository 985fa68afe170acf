package rewards

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkAccount measures accounting throughput and the redis-server CPU
// it costs per event (from INFO cpu, so other load on the machine does not
// count), with batches of 1000 seeding sessions each 60 s after the
// previous: 100 users x 10 torrents, and one user with 100 torrents x 10
// clients (as bench/compare.sh: everything one user's).
func BenchmarkAccount(b *testing.B) {
	for _, shape := range []struct {
		name              string
		users, torrents   int
		clientsPerTorrent int
	}{
		{"100users-10torrents", 100, 10, 1},
		{"1user-100torrents-10clients", 1, 100, 10},
	} {
		b.Run(shape.name, func(b *testing.B) {
			e := newAcctEnv(b)
			var batch []Event
			for u := range shape.users {
				for t := range shape.torrents {
					for c := range shape.clientsPerTorrent {
						batch = append(batch, acctEv(fmt.Sprintf("user%03d", u), byte(t), byte(c), acT0, 0, 0, 0))
					}
				}
			}
			if _, err := e.a.Account(e.ctx, batch, acAllOpen, nil); err != nil {
				b.Fatal(err)
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
