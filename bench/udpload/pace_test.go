package main

import (
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestScheduleIsEvenAndExact(t *testing.T) {
	for _, rate := range []int{1, 7, 1000, 33333, 99999, maxRate} {
		if got := dueOffset(int64(rate), rate); got != time.Second {
			t.Errorf("rate %d: request %d due at %v, want 1s", rate, rate, got)
		}
		if got := dueOffset(int64(rate)*600, rate); got != 600*time.Second {
			t.Errorf("rate %d: 10 minutes in: %v", rate, got)
		}
		gap := time.Second / time.Duration(rate)
		prev := time.Duration(-1)
		for g := int64(0); g < 5000; g++ {
			d := dueOffset(g, rate)
			if d <= prev && rate <= int(time.Second) {
				t.Fatalf("rate %d: request %d due at %v, not after %v", rate, g, d, prev)
			}
			// Paced, not bursty: consecutive requests are 1/rate apart (to the ns).
			if g > 0 && (d-prev < gap || d-prev > gap+1) {
				t.Fatalf("rate %d: gap %v before request %d, want %v", rate, d-prev, g, gap)
			}
			prev = d
			// scheduledBy counts exactly the requests due strictly before.
			if n := scheduledBy(d, rate); n != g {
				t.Fatalf("rate %d: scheduledBy(due(%d)) = %d", rate, g, n)
			}
			if n := scheduledBy(d+1, rate); n != g+1 {
				t.Fatalf("rate %d: scheduledBy(due(%d)+1ns) = %d", rate, g, n)
			}
		}
	}
	if scheduledBy(0, 10) != 0 || scheduledBy(10*time.Second, 1000) != 10000 {
		t.Fatal("scheduledBy bounds")
	}
}

func TestHighQuantiles(t *testing.T) {
	var h histogram
	// 100k samples: 1..99900 µs once each (1 µs apart), then 100 at 50 ms.
	for v := 1; v <= 99_900; v++ {
		h.record(time.Duration(v) * time.Microsecond)
	}
	for range 100 {
		h.record(50 * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {0.999, 99.9 * 1000 * time.Microsecond}} {
		got := h.quantile(c.q)
		if d := float64(got-c.want) / float64(c.want); d < -0.035 || d > 0.035 {
			t.Errorf("q%.3f = %v, want %v +- 3.5 %%", c.q, got, c.want)
		}
	}
}

func TestPacedRateAgainstFakeTracker(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	f := startFake(t, 0)
	res, out := f.run(t, "-rate", "4000", "-sockets", "4", "-window", "64", "-duration", "1s",
		"-timeout", "1s", "-torrents", "50", "-peers", "20", "-passkey", "PK", "-pacer-nice")
	t.Log(out)
	if res["rate"] != 4000 || res["scheduled"] != 4000 || res["unsent"] != 0 || res["sent"] != 4000 {
		t.Errorf("rate %d scheduled %d sent %d unsent %d, want 4000 in 1 s", res["rate"], res["scheduled"], res["sent"], res["unsent"])
	}
	if got := res["announces"] + res["scrapes"] + res["timeouts"]; got != 4000 {
		t.Errorf("answered %d + timeouts %d != 4000", res["announces"]+res["scrapes"], res["timeouts"])
	}
	if res["responses_per_s"] < 3600 || res["responses_per_s"] > 4100 {
		t.Errorf("achieved %d/s, want ~4000", res["responses_per_s"])
	}
	if res["p999_us"] < res["p99_us"] || res["p99_us"] < res["p50_us"] || res["svc_p99_us"] <= 0 {
		t.Errorf("latency p50 %d p99 %d p99.9 %d svc p99 %d", res["p50_us"], res["p99_us"], res["p999_us"], res["svc_p99_us"])
	}
	// The kernel stamps every reply before the reader sees it.
	if runtime.GOOS == "linux" && (res["stamped"] != res["announces"]+res["scrapes"] ||
		res["kern_p99_us"] <= 0 || res["kern_p99_us"] > res["p99_us"] || res["kern_p50_us"] > res["p50_us"]) {
		t.Errorf("stamped %d of %d; kernel-stamp p50 %d p99 %d µs against p50 %d p99 %d µs", res["stamped"], res["announces"]+res["scrapes"],
			res["kern_p50_us"], res["kern_p99_us"], res["p50_us"], res["p99_us"])
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.urlData["/PK"] != f.announces+f.scrapes {
		t.Errorf("URL data %v", f.urlData)
	}
	// The open loop runs on two Ps (pacer, readers) and gives back the rest.
	if len(f.procs) != 1 || f.procs[openLoopProcs] == 0 || runtime.GOMAXPROCS(0) != 3 {
		t.Errorf("GOMAXPROCS while pacing %v, after %d; want only %d, then 3 again", f.procs, runtime.GOMAXPROCS(0), openLoopProcs)
	}
	// With -pacer-nice the pacer's thread is raised where the process may do so.
	if want := niceIfPermitted(); res["pacer_nice"] != want {
		t.Errorf("pacer_nice=%d, want %d", res["pacer_nice"], want)
	}
	// The pacer goes round the sockets: every socket carries its share.
	if len(f.ports) != 4 {
		t.Errorf("requests came from %d sockets, want 4: %v", len(f.ports), f.ports)
	}
	for port, n := range f.ports {
		if n < 400 {
			t.Errorf("socket %d sent %d of 4000 requests: %v", port, n, f.ports)
		}
	}
}

// A tracker that stalls for 100 ms once: every request scheduled during the
// stall is charged its wait, not only the ones in flight when it began.
// (About 100 requests queue in the fake's socket, within its receive buffer.)
func TestPacedHasNoCoordinatedOmission(t *testing.T) {
	f := startFake(t, 0)
	f.mu.Lock()
	f.stallAt, f.stall = 300, 100*time.Millisecond
	f.mu.Unlock()
	res, out := f.run(t, "-rate", "1000", "-sockets", "4", "-window", "100", "-duration", "1s",
		"-timeout", "2s", "-torrents", "50", "-peers", "20", "-scrape-every", "0")
	t.Log(out)
	// ~100 of the 1000 requests fall in the stall, waiting 0-100 ms: the
	// top 1 % waited 90 ms or more.
	if res["announces"] != 1000 || res["timeouts"] != 0 || res["stalls"] != 0 {
		t.Fatalf("announces %d timeouts %d stalls %d", res["announces"], res["timeouts"], res["stalls"])
	}
	if res["p99_us"] < 70_000 || res["max_us"] < 90_000 || res["p50_us"] > 20_000 {
		t.Errorf("p50 %d µs p99 %d µs max %d µs: the stall is not charged to the requests it delayed",
			res["p50_us"], res["p99_us"], res["max_us"])
	}
	if runtime.GOOS == "linux" && res["kern_p99_us"] < 70_000 {
		t.Errorf("kernel-stamp p99 %d µs: the stall is not charged there", res["kern_p99_us"])
	}
}

// The pacer does not wait for replies: with every window full it keeps the
// schedule's times and counts stalls; requests never sent show as unsent.
func TestPacedOverloadIsCounted(t *testing.T) {
	f := startFake(t, 0)
	f.mu.Lock()
	f.stallAt, f.stall = 1, 400*time.Millisecond
	f.mu.Unlock()
	res, out := f.run(t, "-rate", "1000", "-sockets", "2", "-window", "8", "-duration", "500ms",
		"-timeout", "2s", "-torrents", "5", "-peers", "5", "-scrape-every", "0")
	if res["stalls"] == 0 || res["scheduled"] != 500 || res["sent"]+res["unsent"] != 500 || res["max_us"] < 300_000 {
		t.Log(out)
		t.Errorf("stalls %d scheduled %d sent %d unsent %d max %d µs", res["stalls"], res["scheduled"], res["sent"], res["unsent"], res["max_us"])
	}
}

// Unanswered requests count in the open-loop percentiles at their wait.
func TestPacedTimeoutsCountInTheTail(t *testing.T) {
	f := startFake(t, 10) // every 10th announce unanswered
	res, _ := f.run(t, "-rate", "2000", "-sockets", "2", "-window", "64", "-duration", "500ms",
		"-timeout", "100ms", "-torrents", "5", "-peers", "5", "-scrape-every", "0")
	if res["timeouts"] < 90 || res["p99_us"] < 100_000 || res["p50_us"] > 50_000 {
		t.Errorf("timeouts %d p50 %d µs p99 %d µs: timeouts should set the p99 (>= 100 ms)", res["timeouts"], res["p50_us"], res["p99_us"])
	}
	if runtime.GOOS == "linux" && res["kern_p99_us"] < 100_000 {
		t.Errorf("kernel-stamp p99 %d µs: timeouts should set it too", res["kern_p99_us"])
	}
}

func TestChurnKeepsThePopulation(t *testing.T) {
	o := options{model: Model{Torrents: 7, Peers: 5, Head: 0.3, Uniform: 0.2}, churn: 4}
	T, P := int64(o.model.Torrents), int64(o.model.Peers)
	live := map[int64]bool{}
	for n := range T * P { // the -fill population
		live[n] = true
	}
	r := rand.New(rand.NewPCG(3, 4))
	var joins, leaves int
	for num := int64(0); num < 40_000; num++ {
		n, ev := o.churnPeer(num, r)
		if o.isChurn(num) != (ev != eventNone) {
			t.Fatalf("request %d: isChurn %v, event %d", num, o.isChurn(num), ev)
		}
		switch ev {
		case eventStarted:
			if live[n] {
				t.Fatalf("request %d: peer %d joins twice", num, n)
			}
			live[n] = true
			joins++
		case eventStopped:
			if !live[n] {
				t.Fatalf("request %d: peer %d leaves, not live", num, n)
			}
			delete(live, n)
			leaves++
		default:
			if !live[n] {
				t.Fatalf("request %d: announce for peer %d, not live", num, n)
			}
			// Never the next of its torrent to leave (see churnPeer).
			next := int64(-1)
			for m := num/4 + 1; ; m++ {
				if m%T == n%T {
					next = m
					break
				}
			}
			if n == next {
				t.Fatalf("request %d: announce for peer %d, the next of torrent %d to leave", num, n, n%T)
			}
		}
		if num%4 == 3 {
			if int64(len(live)) != T*P {
				t.Fatalf("after request %d: %d live peers, want %d", num, len(live), T*P)
			}
			per := map[int64]int64{}
			for n := range live {
				per[n%T]++
			}
			for i := range T {
				if per[i] != P {
					t.Fatalf("after request %d: torrent %d has %d peers", num, i, per[i])
				}
			}
		}
	}
	if joins != 10_000 || leaves != 10_000 {
		t.Fatalf("joins %d leaves %d", joins, leaves)
	}
	// Peer ids stay distinct across generations.
	if PeerID("-BU0001-", 3, 2) == PeerID("-BU0001-", 3, 2+64_000) {
		t.Fatal("a later generation reuses a peer id")
	}
}

// -pace-quantum: the pacer sleeps at least the quantum, so requests go out
// in bursts up to a quantum late, and that lag counts in their latency.
func TestPaceQuantum(t *testing.T) {
	f := startFake(t, 0)
	res, out := f.run(t, "-rate", "4000", "-pace-quantum", "2ms", "-sockets", "4", "-window", "64", "-duration", "1s",
		"-timeout", "1s", "-torrents", "50", "-peers", "20", "-scrape-every", "0")
	if res["sent"] != 4000 || res["unsent"] != 0 || res["announces"] != 4000 {
		t.Fatalf("sent %d unsent %d answered %d, want all 4000\n%s", res["sent"], res["unsent"], res["announces"], out)
	}
	// Due times spread evenly over each 2 ms sleep: the median waits ~1 ms.
	if res["lag_p50_us"] < 500 || res["lag_p50_us"] > 3000 || res["p50_us"] < res["lag_p50_us"] {
		t.Fatalf("lag p50 %d µs, latency p50 %d µs: want the lag about half the quantum, and counted\n%s", res["lag_p50_us"], res["p50_us"], out)
	}
}

// onRaisedThread calls raisePacer on a thread of its own, then f there, and
// reports whether raisePacer took. The thread is never unlocked, so it ends
// with its goroutine and the test's other threads keep their priority.
func onRaisedThread(f func()) bool {
	ok := make(chan bool)
	go func() {
		runtime.LockOSThread()
		raised := raisePacer()
		f()
		ok <- raised
	}()
	return <-ok
}

// niceIfPermitted is the pacer_nice a run reports here: -20 where this
// process may raise a thread (CAP_SYS_NICE), else 0.
func niceIfPermitted() int64 {
	if onRaisedThread(func() {}) {
		return -20
	}
	return 0
}

func TestPacerNiceOff(t *testing.T) {
	f := startFake(t, 0)
	res, out := f.run(t, "-rate", "2000", "-sockets", "2", "-window", "64", "-duration", "200ms",
		"-timeout", "1s", "-torrents", "10", "-peers", "10", "-scrape-every", "0")
	if _, ok := res["pacer_nice"]; !ok || res["pacer_nice"] != 0 || res["announces"] != 400 {
		t.Fatalf("pacer_nice %d (present %v), answered %d of 400: want 0 without -pacer-nice\n%s", res["pacer_nice"], ok, res["announces"], out)
	}
}

func TestBadPacingFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-pace-quantum", "-1ms"}, "-pace-quantum must be 0..1s"},
		{[]string{"-pace-quantum", "2s"}, "-pace-quantum must be 0..1s"},
		{[]string{"-slow", "-1ms"}, "-slow must be >= 0"},
	} {
		var out, errOut strings.Builder
		code := run(append([]string{"-target", "127.0.0.1:9"}, tt.args...), &out, &errOut)
		if code != 2 || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tt.args, code, errOut.String(), tt.want)
		}
	}
}
