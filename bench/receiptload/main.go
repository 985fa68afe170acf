// Command receiptload submits signed upload receipts to a seedpay tracker at
// a fixed rate, for measuring announce throughput while receipts flow
// (bench/compare.sh, tracker "seedpay-receipts").
//
// Setup, through the admin API and the tracker: it registers one torrent,
// creates -uploaders + -downloaders users, registers an ed25519 receipt key
// for each (POST /api/v1/users/{id}/keys) and makes every user announce the
// torrent over HTTP from its own loopback address (127.77.x.y), uploaders as
// seeders and downloaders as leechers, so that receipts pass the ledger's
// rules (both users announced, from different IPs). It then submits one probe
// batch per uploader until the accounting flush has recorded the announces
// (every probe accepted), and signs every receipt of the run in advance, so
// the timed phase costs only the HTTP posts.
//
// Timed phase: batches of -batch receipts, each uploader's batches in order
// on its own connection (so a pair's cumulative count only grows), scheduled
// at -rate receipts/s in total, to POST /receipts/<uploader passkey> (binary
// form). Every downloader signs, per uploader, one session whose cumulative
// count grows by -step bytes per receipt. It prints "READY ..." when the timed
// phase starts and stops at -duration, after -receipts receipts, or on
// SIGTERM/SIGINT, whichever comes first; the last line is
// "RESULT key=value ...": accepted and rejected counts (rejections by reason),
// receipts/s. It exits 1 when no receipt was accepted: such a run measured
// nothing.
//
//	receiptload -target http://127.0.0.1:6969 -api http://127.0.0.1:6880 -token T -rate 1000 -batch 100 -duration 60s
//
// Only loopback targets are accepted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Hard bounds whatever the flags say.
const (
	maxDuration  = 10 * time.Minute
	maxReceipts  = 2_000_000
	maxUsers     = 1000
	maxBatch     = 100_000
	maxRate      = 1_000_000
	readyTimeout = 30 * time.Second
)

type options struct {
	target      string // tracker base URL: announces and /receipts
	api         string // admin API base URL
	token       string
	uploaders   int
	downloaders int
	rate        float64
	batch       int
	duration    time.Duration
	receipts    int
	step        uint64
	size        int64
	timeout     time.Duration
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("receiptload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.target, "target", "", "tracker HTTP base URL (announces, POST /receipts/<passkey>); loopback only")
	fs.StringVar(&o.api, "api", "", "admin API base URL; loopback only")
	fs.StringVar(&o.token, "token", os.Getenv("SEEDPAY_ADMIN_TOKEN"), "admin bearer token (default $SEEDPAY_ADMIN_TOKEN)")
	fs.IntVar(&o.uploaders, "uploaders", 4, "uploading users (one sender each, batches in order)")
	fs.IntVar(&o.downloaders, "downloaders", 8, "downloading users; each signs a session per uploader")
	fs.Float64Var(&o.rate, "rate", 1000, "receipts per second, all uploaders together")
	fs.IntVar(&o.batch, "batch", 100, "receipts per POST")
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "stop after this long (max 10m)")
	fs.IntVar(&o.receipts, "receipts", 0, "stop after this many receipts (0: rate x duration; at most 2M; all signed in advance)")
	fs.Uint64Var(&o.step, "step", 1<<20, "bytes each receipt adds to its session's cumulative count")
	fs.Int64Var(&o.size, "size", 1<<40, "size of the registered torrent (the ledger caps a downloader at 3 x size)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "HTTP timeout per request")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := o.validate(); err != nil {
		fmt.Fprintln(stderr, "receiptload:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "receiptload: "+format+"\n", a...) }

	t0 := time.Now()
	env, err := setup(ctx, o, logf)
	if err != nil {
		logf("setup: %v", err)
		return 1
	}
	logf("setup: %d users, keys and announces in %.1fs", len(env.uploaders)+len(env.downloaders), time.Since(t0).Seconds())

	t1 := time.Now()
	if err := env.probe(ctx, readyTimeout); err != nil {
		logf("probe: %v", err)
		return 1
	}
	logf("probe: every uploader's first receipts accepted after %.1fs", time.Since(t1).Seconds())

	t2 := time.Now()
	up, down := env.keys()
	plan, err := newPlan(up, down, env.infoHash, o.count(), o.batch, o.step, time.Now())
	if err != nil {
		logf("signing: %v", err)
		return 1
	}
	logf("signed %d receipts in %d batches in %.1fs", plan.receipts, len(plan.batches), time.Since(t2).Seconds())

	fmt.Fprintf(stdout, "READY receipts=%d batches=%d rate=%g batch=%d uploaders=%d downloaders=%d\n",
		plan.receipts, len(plan.batches), o.rate, o.batch, o.uploaders, o.downloaders)
	if f, ok := stdout.(*os.File); ok {
		_ = f.Sync()
	}
	res := send(ctx, env.client, o.target, env.passkeys(), plan, o.rate, o.duration)
	res.print(stdout)
	if res.accepted == 0 {
		logf("no receipt was accepted: a failed measurement")
		return 1
	}
	return 0
}

// count is how many receipts the run signs.
func (o *options) count() int {
	n := o.receipts
	if n == 0 {
		n = int(o.rate * o.duration.Seconds())
	}
	return max(min(n, maxReceipts), o.batch)
}

func (o *options) validate() error {
	for _, u := range []struct{ flag, v string }{{"-target", o.target}, {"-api", o.api}} {
		if err := loopbackURL(u.v); err != nil {
			return fmt.Errorf("%s: %w", u.flag, err)
		}
	}
	switch {
	case o.token == "":
		return errors.New("-token (or $SEEDPAY_ADMIN_TOKEN) is required")
	case o.uploaders < 1 || o.downloaders < 1 || o.uploaders+o.downloaders > maxUsers:
		return fmt.Errorf("-uploaders and -downloaders must be >= 1 and at most %d together", maxUsers)
	case !(o.rate > 0 && o.rate <= maxRate):
		return fmt.Errorf("-rate must be in (0, %d]", maxRate)
	case o.batch < 1 || o.batch > maxBatch:
		return fmt.Errorf("-batch must be 1..%d", maxBatch)
	case o.duration <= 0 || o.duration > maxDuration:
		return fmt.Errorf("-duration must be in (0, %s]", maxDuration)
	case o.receipts < 0 || o.receipts > maxReceipts:
		return fmt.Errorf("-receipts must be 0..%d", maxReceipts)
	case o.step < 1 || o.step > 1<<30:
		return errors.New("-step must be 1..2^30 bytes")
	case o.size < 1:
		return errors.New("-size must be positive")
	case o.timeout <= 0 || o.timeout > time.Minute:
		return errors.New("-timeout must be in (0, 1m]")
	}
	return nil
}

// loopbackURL refuses any URL whose host is not a loopback address.
func loopbackURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("%q: want http://host:port", s)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not loopback (127.0.0.0/8, ::1): refused", s)
	}
	return nil
}
