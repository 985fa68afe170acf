// Command udpload is a BEP 15 UDP tracker load generator for the side-by-side
// benchmark (bench/compare.sh). Many sockets each keep a window of requests
// in flight (connect, then announces and a scrape every -scrape-every
// requests, with an optional BEP 41 passkey), sent and read in batches
// (sendmmsg/recvmmsg). Replies are matched to requests by transaction id,
// which gives the latency percentiles. A run ends at -duration or after
// -requests requests, whichever comes first. Only loopback targets are
// accepted.
//
//	udpload -target 127.0.0.1:6969 -duration 10s -passkey PK
//	udpload -target 127.0.0.1:6969 -fill -torrents 1000 -peers 1000   # every peer once
//	udpload -target 127.0.0.1:6969 -census -torrents 1000             # peers the tracker holds
//	udpload -print-hashes -torrents 1000                               # the torrents' info hashes
//	udpload -target 127.0.0.1:6969 -capture run.pcap                  # the tracker's latency in a capture
//
// The last line of the output is machine-readable: "RESULT key=value ...".
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"
)

// Hard bounds: a run never exceeds these whatever the flags say.
const (
	maxDuration = 10 * time.Minute
	maxRequests = 200_000_000
	maxSockets  = 1024
	maxWindow   = 256
)

type options struct {
	target       string
	sockets      int
	window       int
	duration     time.Duration
	requests     int64
	timeout      time.Duration
	model        Model
	numWant      int
	scrapeEvery  int
	scrapeHashes int
	passkey      string
	peerPrefix   string
	fill         bool
	seed         uint64
	rate         int // open loop: requests per second (0: closed loop)
	churn        int // one join and one leave every churn requests (0: none)
	slow         time.Duration
	quantum      time.Duration
	pacerNice    bool // open loop: the pacer's thread at nice -20 where permitted
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	var printHashes, doCensus, printFilter bool
	var captureFile string
	fs := flag.NewFlagSet("udpload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.target, "target", "", "tracker host:port; must be loopback (127.0.0.0/8 or ::1)")
	fs.IntVar(&o.sockets, "sockets", 64, "UDP sockets (each its own source port and connection id)")
	fs.IntVar(&o.window, "window", 4, "requests in flight per socket")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "stop after this long (max 10m)")
	fs.Int64Var(&o.requests, "requests", 20_000_000, "stop after this many announces+scrapes (max 200M)")
	fs.DurationVar(&o.timeout, "timeout", time.Second, "a request unanswered this long counts as a timeout")
	fs.IntVar(&o.model.Torrents, "torrents", 1000, "torrents (info hashes of -print-hashes)")
	fs.IntVar(&o.model.Peers, "peers", 1000, "peers per torrent (max 64000)")
	fs.Float64Var(&o.model.Head, "head", 0.05, "mean of the exponential popularity head, as a fraction of -torrents")
	fs.Float64Var(&o.model.Uniform, "uniform", 0.2, "share of announces spread uniformly over all torrents")
	fs.IntVar(&o.numWant, "numwant", 30, "peers asked for per announce")
	fs.IntVar(&o.scrapeEvery, "scrape-every", 101, "one request in this many is a scrape (101: announce:scrape 100:1; 0: none)")
	fs.IntVar(&o.scrapeHashes, "scrape-hashes", 1, "info hashes per scrape")
	fs.StringVar(&o.passkey, "passkey", "", "send \"/<passkey>\" as BEP 41 URL data with every announce and scrape")
	fs.StringVar(&o.peerPrefix, "peer-prefix", "-BU0001-", "8-byte peer id prefix")
	fs.IntVar(&o.rate, "rate", 0, "open loop: send this many requests per second on a fixed schedule, latency from the scheduled time (0: closed loop, -window in flight per socket)")
	fs.IntVar(&o.churn, "churn", 0, "every N requests one new peer joins (started) and the oldest leaves (stopped), after a -fill of the same -torrents x -peers (0: no churn)")
	fs.DurationVar(&o.quantum, "pace-quantum", 0, "open loop: the pacer sleeps at least this long between sends (a request is then up to this late, which counts in its latency); 0: until the next request is due")
	fs.BoolVar(&o.pacerNice, "pacer-nice", false, "open loop: run the pacer's thread at nice -20 so that its readers on the same CPU do not delay it; only for a generator pinned to its own CPU (see bench/README; needs root; reported as pacer_nice)")
	fs.DurationVar(&o.slow, "slow", 0, "count the requests slower than this by when they were due within the second, in 50 ms buckets (0: off)")
	fs.BoolVar(&o.fill, "fill", false, "announce every peer of every torrent once (event started), then stop")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed")
	fs.BoolVar(&doCensus, "census", false, "scrape every torrent once and print how many peers the tracker holds, then exit")
	fs.StringVar(&captureFile, "capture", "", "read this pcap file (tcpdump -w) of a run against -target and print the tracker's latency in it, request to reply, then exit")
	fs.BoolVar(&printFilter, "capture-filter", false, fmt.Sprintf("print the tcpdump filter that captures a 1/%d sample of a run's requests to -target (IPv4) and their replies, then exit", captureEvery))
	fs.BoolVar(&printHashes, "print-hashes", false, "print the -torrents info hashes in hex, one a line, and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if printHashes {
		if o.model.Torrents < 1 || o.model.Torrents > maxTorrents {
			fmt.Fprintf(stderr, "udpload: -torrents must be 1..%d\n", maxTorrents)
			return 2
		}
		for i := range o.model.Torrents {
			fmt.Fprintln(stdout, InfoHashHex(i))
		}
		return 0
	}
	raddr, err := o.validate()
	if err != nil {
		fmt.Fprintln(stderr, "udpload:", err)
		return 2
	}
	if printFilter {
		if raddr.IP.To4() == nil {
			// tcpdump's udp[n] reads IPv4 datagrams only.
			fmt.Fprintln(stderr, "udpload: -capture-filter: IPv4 targets only")
			return 2
		}
		fmt.Fprintln(stdout, captureFilter(raddr.Port))
		return 0
	}
	if captureFile != "" {
		return readCaptureFile(captureFile, raddr.AddrPort(), stdout, stderr)
	}
	if doCensus {
		if err := census(o, raddr, stdout); err != nil {
			fmt.Fprintln(stderr, "udpload: census:", err)
			return 1
		}
		return 0
	}
	res, err := load(o, raddr)
	if err != nil {
		fmt.Fprintln(stderr, "udpload:", err)
		return 1
	}
	res.print(stdout, o, raddr)
	if res.announces+res.scrapes == 0 {
		return 1
	}
	return 0
}

// readCaptureFile is -capture: 1 when the file cannot be read or holds no
// reply to a request.
func readCaptureFile(name string, tracker netip.AddrPort, stdout, stderr io.Writer) int {
	tracker = netip.AddrPortFrom(tracker.Addr().Unmap(), tracker.Port()) // as printed
	f, err := os.Open(name)
	if err != nil {
		fmt.Fprintln(stderr, "udpload:", err)
		return 1
	}
	defer f.Close()
	st, err := readCapture(f, tracker)
	if err != nil {
		fmt.Fprintf(stderr, "udpload: %s: %v\n", name, err)
		return 1
	}
	st.print(stdout, tracker)
	if st.matched == 0 {
		fmt.Fprintf(stderr, "udpload: %s: no reply from %s to a captured request\n", name, tracker)
		return 1
	}
	return 0
}

func (o *options) validate() (*net.UDPAddr, error) {
	raddr, err := loopbackTarget(o.target)
	if err != nil {
		return nil, err
	}
	if err := o.model.Validate(); err != nil {
		return nil, err
	}
	switch {
	case o.sockets < 1 || o.sockets > maxSockets:
		return nil, fmt.Errorf("-sockets must be 1..%d", maxSockets)
	case o.window < 1 || o.window > maxWindow:
		return nil, fmt.Errorf("-window must be 1..%d", maxWindow)
	case o.duration <= 0 || o.duration > maxDuration:
		return nil, fmt.Errorf("-duration must be in (0, %s]", maxDuration)
	case o.requests < 1 || o.requests > maxRequests:
		return nil, fmt.Errorf("-requests must be 1..%d", maxRequests)
	case o.timeout <= 0 || o.timeout > time.Minute:
		return nil, errors.New("-timeout must be in (0, 1m]")
	case o.numWant < 0 || o.numWant > 1000:
		return nil, errors.New("-numwant must be 0..1000")
	case o.scrapeEvery < 0:
		return nil, errors.New("-scrape-every must be >= 0")
	case o.scrapeHashes < 1 || o.scrapeHashes > 70:
		return nil, errors.New("-scrape-hashes must be 1..70")
	case len(o.peerPrefix) != 8:
		return nil, errors.New("-peer-prefix must be 8 bytes")
	case len(o.passkey) > 1000 || strings.ContainsAny(o.passkey, "/?# "):
		return nil, errors.New("-passkey must be a plain token")
	case o.rate < 0 || o.rate > maxRate:
		return nil, fmt.Errorf("-rate must be 0..%d", maxRate)
	case o.churn < 0 || o.churn == 1 || (o.churn > 0 && o.fill):
		return nil, errors.New("-churn must be 0 or >= 2, and not with -fill")
	case o.slow < 0:
		return nil, errors.New("-slow must be >= 0")
	case o.quantum < 0 || o.quantum > time.Second:
		return nil, errors.New("-pace-quantum must be 0..1s")
	case o.churn > 0 && o.model.Peers < 2:
		return nil, errors.New("-churn needs -peers >= 2")
	case o.churn > 0 && o.requests/int64(o.churn)/int64(o.model.Torrents)+int64(o.model.Peers) >= 1<<24:
		return nil, errors.New("-churn: -requests / -churn / -torrents + -peers must stay below 2^24 (peer ids)")
	}
	if o.fill {
		o.requests = min(o.requests, int64(o.model.Torrents)*int64(o.model.Peers))
		o.scrapeEvery = 0
	}
	return raddr, nil
}

// loopbackTarget resolves target and refuses any address that is not
// loopback: this tool only loads trackers on the same machine.
func loopbackTarget(target string) (*net.UDPAddr, error) {
	if target == "" {
		return nil, errors.New("-target is required")
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return nil, fmt.Errorf("-target %q: %w", target, err)
	}
	if port == "" || port == "0" {
		return nil, fmt.Errorf("-target %q: no port", target)
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsLoopback() {
		return nil, fmt.Errorf("-target %q is not loopback (127.0.0.0/8, ::1): refused", target)
	}
	raddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return nil, fmt.Errorf("-target %q: %w", target, err)
	}
	if !raddr.IP.IsLoopback() {
		return nil, fmt.Errorf("-target %q resolves to %s, not loopback (127.0.0.0/8, ::1): refused", target, raddr.IP)
	}
	return raddr, nil
}

// result is the sum of every worker's counters.
type result struct {
	stats
	elapsed   time.Duration
	sockets   int // sockets that connected
	connFails int
	paced     *pacerStats // -rate
}

func (r *result) print(w io.Writer, o options, raddr *net.UDPAddr) {
	secs := r.elapsed.Seconds()
	rate := func(n uint64) float64 {
		if secs <= 0 {
			return 0
		}
		return float64(n) / secs
	}
	mode := "mixed"
	if o.fill {
		mode = "fill"
	}
	if o.churn > 0 {
		mode += fmt.Sprintf(", churn 1/%d", o.churn)
	}
	if o.rate > 0 {
		mode += fmt.Sprintf(", open loop at %d/s", o.rate)
	}
	fmt.Fprintf(w, "udpload: %s, %s, %d sockets x %d in flight, %d torrents x %d peers, %.2fs\n",
		raddr, mode, r.sockets, o.window, o.model.Torrents, o.model.Peers, secs)
	fmt.Fprintf(w, "  announces  %10d  %9.0f/s   avg peers per reply %.1f\n", r.announces, rate(r.announces), r.avgPeers())
	fmt.Fprintf(w, "  scrapes    %10d  %9.0f/s\n", r.scrapes, rate(r.scrapes))
	fmt.Fprintf(w, "  responses  %10d  %9.0f/s   (connects %d)\n", r.announces+r.scrapes, rate(r.announces+r.scrapes), r.connects)
	from := ""
	if r.paced != nil {
		from = " (from the scheduled send)"
	}
	fmt.Fprintf(w, "  latency%s    p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", from,
		us(r.hist.quantile(0.50)), us(r.hist.quantile(0.90)), us(r.hist.quantile(0.99)), us(r.hist.quantile(0.999)), us(time.Duration(r.hist.max)))
	paced := ""
	if p := r.paced; p != nil {
		fmt.Fprintf(w, "  service latency (from the actual send)    p50 %s  p99 %s  p99.9 %s\n",
			us(r.svc.quantile(0.50)), us(r.svc.quantile(0.99)), us(r.svc.quantile(0.999)))
		nice := 0
		if p.nice {
			nice = -20
		}
		fmt.Fprintf(w, "  open loop  target %d/s  scheduled %d  sent %d  unsent %d  achieved %.0f/s  stalls (all windows full) %d  pacer lag p50 %s  p99 %s  max %s  pacer nice %d\n",
			o.rate, p.scheduled, p.sent, p.scheduled-p.sent, rate(r.announces+r.scrapes), p.stalls,
			us(p.lag.quantile(0.5)), us(p.lag.quantile(0.99)), us(time.Duration(p.lag.max)), nice)
		paced = fmt.Sprintf(" rate=%d scheduled=%d sent=%d unsent=%d stalls=%d pacer_nice=%d lag_p50_us=%.0f lag_p99_us=%.0f lag_max_us=%.0f svc_p50_us=%.0f svc_p99_us=%.0f svc_p999_us=%.0f",
			o.rate, p.scheduled, p.sent, p.scheduled-p.sent, p.stalls, nice,
			usf(p.lag.quantile(0.5)), usf(p.lag.quantile(0.99)), usf(time.Duration(p.lag.max)),
			usf(r.svc.quantile(0.5)), usf(r.svc.quantile(0.99)), usf(r.svc.quantile(0.999)))
		if r.stamped > 0 {
			fmt.Fprintf(w, "  latency to the kernel's receive stamp (the generator's wake-up left out; %d of %d replies stamped)    p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
				r.stamped, r.announces+r.scrapes,
				us(r.kern.quantile(0.50)), us(r.kern.quantile(0.90)), us(r.kern.quantile(0.99)), us(r.kern.quantile(0.999)), us(time.Duration(r.kern.max)))
			paced += fmt.Sprintf(" stamped=%d kern_p50_us=%.0f kern_p90_us=%.0f kern_p99_us=%.0f kern_p999_us=%.0f kern_max_us=%.0f",
				r.stamped, usf(r.kern.quantile(0.50)), usf(r.kern.quantile(0.90)), usf(r.kern.quantile(0.99)), usf(r.kern.quantile(0.999)), usf(time.Duration(r.kern.max)))
		}
	}
	if o.slow > 0 {
		var n uint64
		var b strings.Builder
		for _, c := range r.slow {
			n += c
			fmt.Fprintf(&b, " %d", c)
		}
		fmt.Fprintf(w, "  slower than %s: %d, by when due within the second (%d ms buckets):%s\n", o.slow, n, 1000/slowBuckets, b.String())
	}
	fmt.Fprintf(w, "  errors %d  timeouts %d  late replies %d  malformed %d  send errors %d  socket errors %d  unconnected sockets %d\n",
		r.errorTotal(), r.timeouts, r.late, r.malformed, r.sendErrors, r.sockErrors, r.connFails)
	for _, m := range r.topErrors(5) {
		fmt.Fprintf(w, "    error reply %q x %d\n", m, r.errors[m])
	}
	fmt.Fprintf(w, "RESULT responses_per_s=%.0f announces_per_s=%.0f p50_us=%.0f p90_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f"+
		" announces=%d scrapes=%d connects=%d errors=%d timeouts=%d late=%d malformed=%d send_errors=%d socket_errors=%d"+
		" avg_peers=%.1f elapsed_s=%.2f%s\n",
		rate(r.announces+r.scrapes), rate(r.announces),
		usf(r.hist.quantile(0.50)), usf(r.hist.quantile(0.90)), usf(r.hist.quantile(0.99)), usf(r.hist.quantile(0.999)), usf(time.Duration(r.hist.max)),
		r.announces, r.scrapes, r.connects, r.errorTotal(), r.timeouts, r.late, r.malformed, r.sendErrors, r.sockErrors,
		r.avgPeers(), secs, paced)
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fus", usf(d)) }

func usf(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func (r *result) avgPeers() float64 {
	if r.announces == 0 {
		return 0
	}
	return float64(r.peers) / float64(r.announces)
}

func (r *result) errorTotal() uint64 {
	var n uint64
	for _, c := range r.errors {
		n += c
	}
	return n
}

func (r *result) topErrors(k int) []string {
	var ms []string
	for m := range r.errors {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(a, b int) bool {
		if r.errors[ms[a]] != r.errors[ms[b]] {
			return r.errors[ms[a]] > r.errors[ms[b]]
		}
		return ms[a] < ms[b]
	})
	return ms[:min(k, len(ms))]
}
