package rewards

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/seedpay/seedpay/internal/redistest"
)

// localEnv is a LocalAccountant and its flusher on a real redis-server,
// with the flusher's clock at the start of epoch acE's grace end (so
// min_open is acE at flush time).
type localEnv struct {
	t   testing.TB
	ctx context.Context
	rdb redis.UniversalClient
	a   *LocalAccountant
	f   *LocalFlusher
	now time.Time
}

// seedSecs is user u1's seeding seconds in epoch acE, as Redis has them.
func (e *localEnv) seedSecs() string {
	return e.rdb.HGet(e.ctx, KeyUserEpoch("u1", acE), "seed_s").Val()
}

// crash abandons the instance (no Stop) and waits out its lease.
func (e *localEnv) crash() { time.Sleep(e.f.leaseTTL + 100*time.Millisecond) }

func newLocalEnv(t testing.TB, rdb redis.UniversalClient) *localEnv {
	t.Helper()
	cfg := acctConfig()
	a, err := NewLocalAccountant(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewLocalFlusher(rdb, a, cfg, LocalFlusherConfig{FlushInterval: time.Second}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &localEnv{t: t, ctx: context.Background(), rdb: rdb, a: a, f: f,
		now: time.Unix(acT0, 0).Add(cfg.Epoch.Grace)}
	f.now = func() time.Time { return e.now }
	f.leaseTTL = 2 * time.Second
	if err := f.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *localEnv) flush() {
	e.t.Helper()
	if err := e.f.Flush(e.ctx); err != nil {
		e.t.Fatalf("Flush: %v", err)
	}
}

// ledgerOf renders the keys both modes write with the same meaning: the
// users' epoch hashes and address sets.
func ledgerOf(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, pat := range []string{"sp:{u:*}:e:*", "sp:{u:*}:ip:*"} {
		keys, err := rdb.Keys(ctx, pat).Result()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(keys)
		for _, k := range keys {
			var v any
			if strings.Contains(k, ":ip:") {
				m := rdb.SMembers(ctx, k).Val()
				slices.Sort(m)
				v = m
			} else {
				v = rdb.HGetAll(ctx, k).Val()
			}
			fmt.Fprintf(&b, "%s %v ttl>0=%v\n", k, v, rdb.TTL(ctx, k).Val() > 0)
		}
	}
	return b.String()
}

// TestLocalMatchesScript replays random sessions (restarts, stops, replays,
// clients over the cap, sealed epochs) through account.lua and through the
// in-memory accountant, with the pool list given (Apply) and looked up
// (ApplyLookup, as the hook calls it): every outcome and every epoch hash
// and address set must be the same.
func TestLocalMatchesScript(t *testing.T) {
	srv := redistest.Start(t)
	for seed := range uint64(12) {
		for _, lazy := range []bool{false, true} {
			name := strconv.FormatUint(seed, 10)
			if lazy {
				name += "/lookup"
			}
			t.Run(name, func(t *testing.T) { matchScript(t, srv, seed, lazy) })
		}
	}
}

func matchScript(t *testing.T, srv *redistest.Server, seed uint64, lazy bool) {
	rng := newTestRand(seed)
	evs, pools := randomSessions(rng, seed)
	minOpen := acE

	ref := newAcctEnv(t)
	want := ref.account(minOpen, pools, evs...)

	rdb := srv.Client(t)
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	loc := newLocalEnv(t, rdb)
	// As the script reads a nil list: no pool (nil would mean
	// "global" to Apply).
	noneIsEmpty := func(ih [20]byte) []string {
		if ps := pools(ih); ps != nil {
			return ps
		}
		return []string{}
	}
	lookups, earning := 0, 0
	counted := func(ih [20]byte) []string { lookups++; return noneIsEmpty(ih) }
	codes := map[Code]int{}
	for i := range evs {
		var got Outcome
		if lazy {
			got = loc.a.ApplyLookup(&evs[i], minOpen, counted)
		} else {
			got = loc.a.Apply(&evs[i], minOpen, noneIsEmpty(evs[i].InfoHash))
		}
		codes[got.Code]++
		if got.Seconds > 0 {
			earning++
		}
		if got != want[i] {
			t.Fatalf("event %d %+v: local %+v, script %+v", i, evs[i], got, want[i])
		}
		if rng.n(40) == 0 {
			loc.flush() // flushes in between change nothing
		}
	}
	loc.flush()
	if codes[CodeAccounted] == 0 || codes[CodeLate] == 0 || codes[CodeReset] == 0 || seed%2 == 1 && codes[CodeCapped] == 0 {
		t.Fatalf("outcomes %v: the test should exercise more", codes)
	}
	// The pools are asked once per event that earns points (every
	// credit here has a weight), not per announce.
	if lazy && (lookups != earning || earning == 0 || earning == len(evs)) {
		t.Fatalf("%d pool lookups for %d of %d events earning points", lookups, earning, len(evs))
	}
	// Outcomes counts what Apply returned.
	n := loc.a.Outcomes()
	for c := range n {
		if int(n[c]) != codes[Code(c)] {
			t.Fatalf("Outcomes() = %v, Apply returned %v", n, codes)
		}
	}
	if a, b := ledgerOf(t, ref.rdb), ledgerOf(t, rdb); a != b {
		t.Fatalf("ledgers differ:\nscript:\n%s\nlocal:\n%s", a, b)
	}
	// Every user with points in an epoch is listed for the settler.
	keys := rdb.Keys(context.Background(), "sp:{u:*}:e:*").Val()
	if len(keys) == 0 {
		t.Fatal("nothing credited")
	}
	for _, k := range keys {
		user := k[len("sp:{u:"):strings.Index(k, "}")]
		e, _ := strconv.ParseInt(k[strings.LastIndex(k, ":")+1:], 10, 64)
		if ok, _ := rdb.SIsMember(context.Background(), KeyEpochUsers(e), user).Result(); !ok {
			t.Errorf("%s has points but is not in %s", user, KeyEpochUsers(e))
		}
	}
}

// failingHook makes the client report an error for every pipeline (the
// flush; the lease renewal still works) while armed: before sending (the server saw nothing) or after (the server
// applied everything, the reply was lost).
type failingHook struct {
	before, after atomic.Bool
}

func (h *failingHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *failingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *failingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.before.Load() {
			for _, c := range cmds {
				c.SetErr(errInjected)
			}
			return errInjected
		}
		err := next(ctx, cmds)
		if h.after.Load() {
			for _, c := range cmds {
				c.SetErr(errInjected)
			}
			return errInjected
		}
		return err
	}
}

var errInjected = errors.New("injected: connection lost")

// seedTwice is two announces of one seeding client 600 s apart, credited
// 600 s of epoch acE.
func seedTwice(a *LocalAccountant, user string, tor byte, from int64) {
	for _, at := range []int64{from, from + 600} {
		ev := acctEv(user, tor, 1, at, 0, 0, 0)
		a.Apply(&ev, acE, nil)
	}
}

func TestLocalFlushLostReplyAppliedOnce(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	h := &failingHook{}
	rdb.AddHook(h)
	e := newLocalEnv(t, rdb)
	key := KeyUserEpoch("u1", acE)

	if err := flushScript.Load(e.ctx, rdb).Err(); err != nil { // else the lost reply would be NOSCRIPT's
		t.Fatal(err)
	}
	seedTwice(e.a, "u1", 1, acT0+100)
	h.after.Store(true) // the flush lands, its reply is lost
	if err := e.f.Flush(e.ctx); !errors.Is(err, errInjected) {
		t.Fatalf("Flush = %v, want the injected error", err)
	}
	h.after.Store(false)
	if got := rdb.HGet(e.ctx, key, "seed_s").Val(); got != "600" {
		t.Fatalf("seed_s after the lost reply = %q, want 600 (the write landed)", got)
	}
	// Newer credit waits in memory while the failed flush is retried.
	seedTwice(e.a, "u1", 2, acT0+1000)
	e.flush() // the retry: a no-op for u1, already applied
	if got := rdb.HGet(e.ctx, key, "seed_s").Val(); got != "600" {
		t.Fatalf("seed_s after the retry = %q, want 600: the retry applied twice", got)
	}
	e.flush() // now the newer credit
	if got := rdb.HGet(e.ctx, key, "seed_s").Val(); got != "1200" {
		t.Fatalf("seed_s = %q, want 1200", got)
	}
}

// breakCall makes the server refuse the flush.lua call of one sequence
// number (its mode argument is corrupted on the way, so the script fails
// before writing) while the calls after it in the pipeline still run.
type breakCall struct{ seq atomic.Int64 }

func (h *breakCall) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *breakCall) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *breakCall) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			a := c.Args()
			if name, _ := a[0].(string); name != "evalsha" || len(a) < 6 {
				continue
			}
			nkeys, _ := a[2].(int)
			if seq, ok := a[3+nkeys].(int64); ok && seq == h.seq.Load() {
				a[4+nkeys] = "broken"
			}
		}
		return next(ctx, cmds)
	}
}

// TestLocalFlushChainWaitsForFailedCall: when a call in the middle of a
// flush fails on the server, the calls after it are not applied either
// (out of order), and the retry applies each exactly once.
func TestLocalFlushChainWaitsForFailedCall(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	h := &breakCall{}
	rdb.AddHook(h)
	e := newLocalEnv(t, rdb)
	e.f.group = 2
	for u := range 5 {
		seedTwice(e.a, "u"+strconv.Itoa(u), 1, acT0+100)
	}
	h.seq.Store(e.f.seq + 2) // the second call: u2, u3
	if err := e.f.Flush(e.ctx); err == nil || !strings.Contains(err.Error(), "2 of 3 calls") {
		t.Fatalf("Flush = %v, want 2 of 3 calls not applied", err)
	}
	seeds := func() (out []string) {
		for u := range 5 {
			out = append(out, rdb.HGet(e.ctx, KeyUserEpoch("u"+strconv.Itoa(u), acE), "seed_s").Val())
		}
		return out
	}
	if got := seeds(); !slices.Equal(got, []string{"600", "600", "", "", ""}) {
		t.Fatalf("seed_s by user after the failed call: %q, want only the first call's users", got)
	}
	h.seq.Store(0)
	e.flush()
	e.flush()
	if got := seeds(); !slices.Equal(got, []string{"600", "600", "600", "600", "600"}) {
		t.Fatalf("seed_s by user after the retry: %q, want 600 each", got)
	}
}

// TestLocalClusterClient: on Redis Cluster each user is its own call (one
// slot), with the token in the user's slot, and a restart restores.
func TestLocalClusterClient(t *testing.T) {
	cc := clusterClient(t)
	e := newLocalEnv(t, cc)
	if e.f.group != 1 {
		t.Fatalf("group %d on a cluster client, want 1", e.f.group)
	}
	seedTwice(e.a, "u1", 1, acT0+100)
	seedTwice(e.a, "u2", 1, acT0+100)
	e.flush()
	for _, u := range []string{"u1", "u2"} {
		if got := cc.HGet(e.ctx, KeyUserEpoch(u, acE), "seed_s").Val(); got != "600" {
			t.Fatalf("%s seed_s %q, want 600", u, got)
		}
		if n := cc.Exists(e.ctx, KeyFlushToken(u, e.f.Instance())).Val(); n != 1 {
			t.Fatalf("%s: no token in its slot", u)
		}
	}
	if err := e.f.Stop(e.ctx); err != nil {
		t.Fatal(err)
	}
	e2 := newLocalEnv(t, cc)
	ev := acctEv("u1", 1, 1, acT0+1000, 0, 0, 0)
	if out := e2.a.Apply(&ev, acE, nil); out.Seconds != 300 {
		t.Fatalf("after a restart on the cluster: %+v, want 300 s credited", out)
	}
}

func TestLocalFlushFailedBeforeSendingIsRetried(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	h := &failingHook{}
	rdb.AddHook(h)
	e := newLocalEnv(t, rdb)
	key := KeyUserEpoch("u1", acE)
	seedTwice(e.a, "u1", 1, acT0+100)
	h.before.Store(true)
	for range 3 {
		if err := e.f.Flush(e.ctx); err == nil {
			t.Fatal("Flush succeeded with Redis unreachable")
		}
	}
	seedTwice(e.a, "u1", 2, acT0+1000)
	h.before.Store(false)
	if n := rdb.Exists(e.ctx, key).Val(); n != 0 {
		t.Fatal("something landed while Redis was unreachable")
	}
	e.flush()
	e.flush()
	if got := rdb.HGet(e.ctx, key, "seed_s").Val(); got != "1200" {
		t.Fatalf("seed_s = %q, want 1200: credit lost while Redis was unreachable", got)
	}
	w := acctConfig().Scoring.Weight(acSize, acSeeders)
	if got := rdb.HGet(e.ctx, key, "pts:global").Val(); got != strconv.FormatInt(1200*w, 10) {
		t.Fatalf("pts:global = %s, want %d", got, 1200*w)
	}
}

// TestLocalFlushCarriesSealedEpochs: credit earned in an epoch that sealed
// before its flush landed goes to the oldest open epoch, as account.lua
// carries it; self-reported bytes of the sealed epoch are dropped.
func TestLocalFlushCarriesSealedEpochs(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	e := newLocalEnv(t, rdb)
	for _, ev := range []Event{acctEv("u1", 1, 1, acT0+100, 0, 0, 0), acctEv("u1", 1, 1, acT0+700, 5000, 0, 0)} {
		ev.IP = [16]byte{10: 0xff, 11: 0xff, 12: 10, 15: 1}
		e.a.Apply(&ev, acE, nil)
	}
	e.now = time.Unix(acT0+acL, 0).Add(acctConfig().Epoch.Grace) // acE is sealed now
	e.flush()
	w := acctConfig().Scoring.Weight(acSize, acSeeders)
	if got := rdb.HGet(e.ctx, KeyUserEpoch("u1", acE+1), "pts:global").Val(); got != strconv.FormatInt(600*w, 10) {
		t.Fatalf("pts:global in acE+1 = %q, want %d carried", got, 600*w)
	}
	if n := rdb.Exists(e.ctx, KeyTorrentIPs("u1", acctTorHex(1), acE)).Val(); n != 0 {
		t.Fatal("the address set of a sealed epoch was written")
	}
	if n := rdb.Exists(e.ctx, KeyUserEpoch("u1", acE)).Val(); n != 0 {
		t.Fatal("a sealed epoch was written")
	}
	if got := rdb.HGetAll(e.ctx, KeyUserEpoch("u1", acE+1)).Val(); got["seed_s"] != "600" || got["up"] != "" {
		t.Fatalf("epoch acE+1 = %v, want seed_s 600 carried and no bytes", got)
	}
	if ok := rdb.SIsMember(e.ctx, KeyEpochUsers(acE+1), "u1").Val(); !ok {
		t.Fatal("u1 not listed in the epoch it was carried into")
	}
}

func TestLocalLeaseRefusesSecondInstance(t *testing.T) {
	srv := redistest.Start(t)
	first := newLocalEnv(t, srv.Client(t))
	stop := make(chan struct{})
	renewed := make(chan struct{})
	go func() { // the holder is alive: it renews (2 s TTL) while the second tries
		defer close(renewed)
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
				_ = first.f.renew(context.Background())
			}
		}
	}()
	cfg := acctConfig()
	a, _ := NewLocalAccountant(cfg)
	second, err := NewLocalFlusher(srv.Client(t), a, cfg, LocalFlusherConfig{FlushInterval: time.Second}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	second.leaseTTL = 500 * time.Millisecond
	if err := second.Start(context.Background()); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("second Start = %v, want ErrLeaseHeld", err)
	}
	close(stop)
	<-renewed
	// Once the holder stops, the second starts.
	if err := first.f.Stop(first.ctx); err != nil {
		t.Fatal(err)
	}
	if err := second.Start(context.Background()); err != nil {
		t.Fatalf("Start after the holder stopped: %v", err)
	}
	// The stopped one can no longer write.
	seedTwice(first.a, "u1", 1, acT0+100)
	if err := first.f.Flush(first.ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Flush without the lease = %v, want ErrLeaseLost", err)
	}
}

// run feeds one seeding client of u1 announcing every 300 s from acT0+60
// for n announces starting at announce k, to a.
func seedRun(a *LocalAccountant, k, n int) {
	for i := k; i < k+n; i++ {
		ev := acctEv("u1", 1, 1, acT0+60+int64(i)*300, uint64(i)*10, 0, 0)
		a.Apply(&ev, acE, nil)
	}
}

// TestLocalGracefulRestartLosesNothing: Stop saves the sessions, the next
// Start restores them, and the session's gap across the restart is credited.
func TestLocalGracefulRestartLosesNothing(t *testing.T) {
	srv := redistest.Start(t)
	e := newLocalEnv(t, srv.Client(t))
	seedRun(e.a, 0, 5)
	if err := e.f.Stop(e.ctx); err != nil {
		t.Fatal(err)
	}
	e2 := newLocalEnv(t, srv.Client(t))
	seedRun(e2.a, 5, 5)
	e2.flush()
	if got := e2.seedSecs(); got != "2700" {
		t.Fatalf("seed_s = %s, want 2700 (9 gaps of 300 s, the restart's included)", got)
	}
}

// TestLocalCrashNeverCreditsTwice: after a snapshot, the instance credits
// more and crashes (no Stop). The next one restores the older snapshot:
// the seconds credited after it are not credited again, and the session
// goes on earning from the last flushed second.
func TestLocalCrashNeverCreditsTwice(t *testing.T) {
	srv := redistest.Start(t)
	e := newLocalEnv(t, srv.Client(t))
	seedRun(e.a, 0, 3) // credits 600 s up to acT0+660
	if err := e.f.Snapshot(e.ctx); err != nil {
		t.Fatal(err)
	}
	seedRun(e.a, 3, 3) // 900 s more, up to acT0+1560
	e.now = time.Unix(acT0+1560, 0)
	e.flush()
	// Crash: no Stop; the lease is left to expire.
	e.crash()

	e2 := newLocalEnv(t, srv.Client(t))
	seedRun(e2.a, 6, 2) // announces at acT0+1860 and +2160
	e2.flush()
	if got := e2.seedSecs(); got != "2100" {
		t.Fatalf("seed_s = %s, want 2100: 1500 before the crash, then 1560..2160", got)
	}
}

// TestLocalCrashBeforeAnySnapshot: with no snapshot the next instance
// starts empty; the first announce of each session starts it afresh.
func TestLocalCrashBeforeAnySnapshot(t *testing.T) {
	srv := redistest.Start(t)
	e := newLocalEnv(t, srv.Client(t))
	seedRun(e.a, 0, 3)
	e.flush()
	e.crash()
	e2 := newLocalEnv(t, srv.Client(t))
	if out := e2.a.Apply(&Event{User: "u1", Size: acSize, Seeders: acSeeders, Time: acT0 + 960, InfoHash: [20]byte{1}, PeerID: [20]byte{1}}, acE, nil); out.Code != CodeNew {
		t.Fatalf("first announce after a crash with no snapshot: %v, want new", out.Code)
	}
	seedRun(e2.a, 4, 1) // acT0+1260: 300 s from the fresh start, nothing before it again
	e2.flush()
	if got := e2.seedSecs(); got != "900" {
		t.Fatalf("seed_s = %s, want 900 (600 before the crash, 300 after)", got)
	}
}

// TestLocalCrashOfARestorer: A stops (snapshot), B restores it, credits,
// flushes and crashes; C restores A's snapshot again: the marks rise to B's
// last flush, so B's seconds are not credited twice.
func TestLocalCrashOfARestorer(t *testing.T) {
	srv := redistest.Start(t)
	a := newLocalEnv(t, srv.Client(t))
	seedRun(a.a, 0, 3) // 600 s, up to +660
	if err := a.f.Stop(a.ctx); err != nil {
		t.Fatal(err)
	}
	b := newLocalEnv(t, srv.Client(t))
	seedRun(b.a, 3, 3) // 900 s, up to +1560
	b.now = time.Unix(acT0+1560, 0)
	b.flush()
	b.crash()
	c := newLocalEnv(t, srv.Client(t))
	seedRun(c.a, 6, 2)
	c.flush()
	if got := c.seedSecs(); got != "2100" {
		t.Fatalf("seed_s = %s, want 2100", got)
	}
}

// TestLocalFlushDroppedAfter12Hours: a flush failing for longer than half
// the token TTL is dropped (a retry could meet an expired token), counted,
// and never written.
func TestLocalFlushDroppedAfter12Hours(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	h := &failingHook{}
	rdb.AddHook(h)
	e := newLocalEnv(t, rdb)
	seedTwice(e.a, "u1", 1, acT0+100)
	h.before.Store(true)
	if err := e.f.Flush(e.ctx); err == nil {
		t.Fatal("Flush succeeded with Redis unreachable")
	}
	h.before.Store(false)
	e.now = e.now.Add(13 * time.Hour)
	e.flush()
	if n := rdb.Exists(e.ctx, KeyUserEpoch("u1", acE)).Val(); n != 0 {
		t.Fatal("a flush older than 12 h was written")
	}
	if got := testutil.ToFloat64(e.f.dropped); got != 1 {
		t.Fatalf("dropped users %v, want 1", got)
	}
}

// TestLocalRetryAfterLostTokenRecovers: a flush whose first call landed and
// whose second failed, then the chain token lost (eviction, failover):
// the retry restarts the chain from the kept call instead of stalling.
func TestLocalRetryAfterLostTokenRecovers(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	h := &breakCall{}
	rdb.AddHook(h)
	e := newLocalEnv(t, rdb)
	e.f.group = 1
	for u := range 3 {
		seedTwice(e.a, "u"+strconv.Itoa(u), 1, acT0+100)
	}
	h.seq.Store(e.f.seq + 2)
	if err := e.f.Flush(e.ctx); err == nil {
		t.Fatal("Flush with a broken call succeeded")
	}
	h.seq.Store(0)
	rdb.Del(e.ctx, KeyFlushToken("", e.f.Instance()))
	e.flush()
	for u := range 3 {
		if got := rdb.HGet(e.ctx, KeyUserEpoch("u"+strconv.Itoa(u), acE), "seed_s").Val(); got != "600" {
			t.Fatalf("u%d seed_s %q, want 600 once", u, got)
		}
	}
}

func TestLocalSweepDropsIdleSessions(t *testing.T) {
	a, err := NewLocalAccountant(acctConfig())
	if err != nil {
		t.Fatal(err)
	}
	seedRun(a, 0, 2)
	last := acT0 + 60 + 300
	if live := sweepAll(a, last+a.sessionTTL-1); live != 1 {
		t.Fatalf("live = %d before the TTL, want 1", live)
	}
	if live := sweepAll(a, last+a.sessionTTL); live != 0 {
		t.Fatalf("live = %d after the TTL, want 0", live)
	}
	for i := range a.shards {
		if len(a.shards[i].recs) != 0 {
			t.Fatal("an empty record was kept")
		}
	}
}

func sweepAll(a *LocalAccountant, now int64) int { return a.Sweep(now, 0, a.Shards()) }

func TestLocalApplyRefusesBadEvents(t *testing.T) {
	a, err := NewLocalAccountant(acctConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []Event{
		{User: "", Time: acT0},
		{User: "u", Time: 0},
		{User: "u", Time: maxExact},
	} {
		if o := a.Apply(&ev, acE, nil); o.Code != CodeError {
			t.Errorf("%+v: %v, want error", ev, o.Code)
		}
	}
	if live := sweepAll(a, acT0); live != 0 {
		t.Fatalf("a refused event left %d sessions", live)
	}
	if n := a.Outcomes(); n != [CodeLate + 1]uint64{CodeError: 3} {
		t.Fatalf("Outcomes() = %v, want 3 errors", n)
	}
}

func TestFlushScriptRefusesBadLayout(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	tok, h := "sp:{u:x}:fl:i", "sp:{u:x}:e:1"
	for name, c := range map[string]struct {
		keys []string
		args []any
	}{
		"no header":         {[]string{tok}, []any{}},
		"bad mode":          {[]string{tok, h}, []any{1, "most", 60, 60, 1, "", 1, 1, 1, "seed_s", 5, 0}},
		"missing field":     {[]string{tok, h}, []any{1, "max", 60, 60, 1, "", 1, 1, 2, "seed_s", 5, 0}},
		"key count":         {[]string{tok}, []any{1, "max", 60, 60, 1, "", 1, 1, 1, "seed_s", 5, 0}},
		"trailing argument": {[]string{tok, h}, []any{1, "max", 60, 60, 1, "", 1, 1, 1, "seed_s", 5, 0, "x"}},
		"empty address set": {[]string{tok, h, "sp:{u:x}:ip:a:1"}, []any{1, "max", 60, 60, 1, "", 1, 1, 1, "seed_s", 5, 1, 0}},
		"too many addresses": {[]string{tok, h, "sp:{u:x}:ip:a:1"}, append([]any{1, "max", 60, 60, 1, "", 1, 1, 1, "seed_s", 5, 1, 257},
			make([]any, 257)...)},
		"missing user": {[]string{tok, h}, []any{1, "max", 60, 60, 1, "", 2, 1, 1, "seed_s", 5, 0}},
	} {
		if err := flushScript.Run(ctx, rdb, c.keys, c.args...).Err(); err == nil || !strings.Contains(err.Error(), "flush.lua") {
			t.Errorf("%s: %v, want a flush.lua error", name, err)
		}
		if n := rdb.Exists(ctx, tok, h).Val(); n != 0 {
			t.Fatalf("%s: wrote before refusing", name)
		}
	}
	// Two users in one call: x with an epoch hash and an address set, y
	// with an epoch hash. Chain calls name the lease after the token.
	lease := KeyLocalLease
	if err := rdb.Set(ctx, lease, "me:1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	users := []string{h, "sp:{u:x}:ip:a:1", "sp:{u:y}:e:1"}
	call := func(seq, base int64, mode, leaseValue string) ([]string, []any) {
		keys := append([]string{tok}, users...)
		if mode == "chain" {
			keys = append([]string{tok, lease}, users...)
		}
		return keys, []any{seq, mode, 60, 60, base, leaseValue, 2, 1, 2, "seed_s", 5, "pts:global", 10, 1, 2, "10.0.0.1", "::1", 1, 1, "seed_s", 7, 0}
	}
	for i, c := range []struct {
		seq, base int64
		mode      string
		lease     string
		want      int64
	}{
		{1, 1, "max", "", 1}, {1, 1, "max", "", 0}, // a repeated seq is applied once
		{3, 2, "chain", "me:1", -1},    // chain: 2 has not landed
		{2, 2, "chain", "other:2", -2}, // not the lease holder: nothing written
		{2, 2, "chain", "me:1", 1}, {2, 2, "chain", "me:1", 0}, {1, 1, "chain", "me:1", 0},
		{5, 2, "max", "", 1}, // max: any later seq
		{4, 2, "max", "", 0},
	} {
		keys, args := call(c.seq, c.base, c.mode, c.lease)
		if got, err := flushScript.Run(ctx, rdb, keys, args...).Int64(); err != nil || got != c.want {
			t.Fatalf("call %d (seq %d, %s): %v %v, want %d", i, c.seq, c.mode, got, err, c.want)
		}
	}
	// A token lost with Redis data does not stall the chain: the flush's
	// first call (seq = base) applies after it, the next follows.
	rdb.Del(ctx, tok)
	for _, seq := range []int64{8, 9} {
		keys, args := call(seq, 8, "chain", "me:1")
		if got, err := flushScript.Run(ctx, rdb, keys, args...).Int64(); err != nil || got != 1 {
			t.Fatalf("seq %d after the token was lost: %v %v, want 1", seq, got, err)
		}
	}
	if got := rdb.HGetAll(ctx, h).Val(); got["seed_s"] != "25" || got["pts:global"] != "50" {
		t.Fatalf("hash %v, want 5 applications", got)
	}
	if got := rdb.HGet(ctx, "sp:{u:y}:e:1", "seed_s").Val(); got != "35" {
		t.Fatalf("second user's seed_s %s, want 35", got)
	}
	if got := rdb.SCard(ctx, "sp:{u:x}:ip:a:1").Val(); got != 2 {
		t.Fatalf("%d addresses, want 2", got)
	}
}

func TestSnapshotRecordsRoundTrip(t *testing.T) {
	r := &utRecord{mark: acT0 + 5, sessions: []localSession{
		{pid: [20]byte{1}, up: 1, down: 2, seen: acT0, touched: acT0 + 1, seeding: true, member: true},
		{pid: [20]byte{2}, up: maxExact, seen: acT0 - 5, touched: acT0 - 5},
	}}
	k := utKey{user: "user-7", ih: [20]byte{9}}
	b := appendRecord(appendRecord(nil, k, r), k, r)
	n := 0
	err := decodeRecords(b, func(gk utKey, gr *utRecord) {
		n++
		if gk != k || gr.mark != r.mark || !slices.Equal(gr.sessions, r.sessions) {
			t.Fatalf("decoded %+v %+v, want %+v %+v", gk, gr, k, r)
		}
	})
	if err != nil || n != 2 {
		t.Fatalf("decoded %d records: %v", n, err)
	}
	for cut := 1; cut < len(b)/2; cut++ {
		if err := decodeRecords(b[:cut], func(utKey, *utRecord) {}); err == nil {
			t.Fatalf("a record cut at %d decoded", cut)
		}
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	k := utKey{user: "u", ih: [20]byte{1}}
	f.Add(appendRecord(nil, k, &utRecord{mark: 3, sessions: []localSession{{seen: 2}}}))
	f.Add([]byte{1, 0, 'u'})
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		total := 0
		_ = decodeRecords(b, func(k utKey, r *utRecord) {
			total += len(k.user) + len(r.sessions)*snapSessionLen
		})
		if total > len(b) {
			t.Fatalf("decoded %d bytes of records from %d", total, len(b))
		}
	})
}

// The address text is what account.lua writes (netip, IPv4 unmapped).
func TestIPText(t *testing.T) {
	var v4 [16]byte
	copy(v4[:], net.ParseIP("10.1.2.3").To16())
	if got := ipText(v4); got != "10.1.2.3" {
		t.Fatalf("%q", got)
	}
}

// TestLocalLeaseLapse: a holder whose lease lapsed takes it back only if
// nobody acquired it since; after another instance held it, the old
// holder's state is stale and it writes nothing (ErrLeaseLost).
func TestLocalLeaseLapse(t *testing.T) {
	srv := redistest.Start(t)
	a := newLocalEnv(t, srv.Client(t))
	ctx := context.Background()

	seedTwice(a.a, "u1", 1, acT0+100)
	a.rdb.Del(ctx, KeyLocalLease) // lapsed (Redis unreachable past the TTL), nobody took it
	a.flush()
	if got := a.seedSecs(); got != "600" {
		t.Fatalf("seed_s %q after taking a lapsed lease back, want 600", got)
	}

	a.rdb.Del(ctx, KeyLocalLease) // lapsed again, and this time...
	b := newLocalEnv(t, srv.Client(t))
	if err := b.f.Stop(ctx); err != nil { // ...another instance held it and let go
		t.Fatal(err)
	}
	seedTwice(a.a, "u1", 1, acT0+1000)
	if err := a.f.Flush(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Flush = %v, want ErrLeaseLost", err)
	}
	if got := a.seedSecs(); got != "600" {
		t.Fatalf("seed_s %q: the stale instance wrote", got)
	}
	if err := a.f.Snapshot(ctx); err == nil {
		t.Fatal("the stale instance saved its sessions")
	}
}

// TestLocalConcurrentApplyAndFlush: announces applied while the flusher
// flushes and snapshots: the ledger holds exactly the seconds the outcomes
// credited (nothing twice, nothing lost).
func TestLocalConcurrentApplyAndFlush(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	e := newLocalEnv(t, rdb)
	const users, rounds = 8, 200
	var credited atomic.Int64
	done := make(chan struct{})
	for u := range users {
		go func() {
			defer func() { done <- struct{}{} }()
			user := "u" + strconv.Itoa(u)
			for i := range rounds {
				ev := acctEv(user, byte(i%4), 1, acT0+100+int64(i/4)*30, 0, 0, 0)
				ev.IP = [16]byte{15: byte(u)}
				credited.Add(e.a.Apply(&ev, acE, nil).Seconds)
			}
		}()
	}
	running := users
	for running > 0 {
		select {
		case <-done:
			running--
		default:
			e.flush()
			if err := e.f.Snapshot(e.ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.flush()
	var total int64
	for u := range users {
		v, _ := strconv.ParseInt(rdb.HGet(e.ctx, KeyUserEpoch("u"+strconv.Itoa(u), acE), "seed_s").Val(), 10, 64)
		total += v
	}
	if total != credited.Load() || total == 0 {
		t.Fatalf("ledger holds %d seed seconds, the outcomes credited %d", total, credited.Load())
	}
}

// TestLocalAddressesBounded: a user announcing one torrent from many
// addresses in one epoch gets at most maxRecordIPs recorded, and the other
// users of the same flush call are written.
func TestLocalAddressesBounded(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	e := newLocalEnv(t, rdb)
	for i := range 5000 {
		ev := acctEv("u1", 1, 1, acT0+100, 0, 0, 0)
		ev.IP = [16]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, byte(i >> 8), byte(i)}
		e.a.Apply(&ev, acE, nil)
	}
	seedTwice(e.a, "u2", 1, acT0+100)
	e.flush()
	if n := rdb.SCard(e.ctx, KeyTorrentIPs("u1", acctTorHex(1), acE)).Val(); n != maxRecordIPs {
		t.Fatalf("%d addresses recorded, want %d", n, maxRecordIPs)
	}
	if got := rdb.HGet(e.ctx, KeyUserEpoch("u2", acE), "seed_s").Val(); got != "600" {
		t.Fatalf("u2 seed_s %q, want 600", got)
	}
}

// TestLocalRestartKeepsCap: the sessions holding the cap's places still
// hold them after a restart (the snapshot keeps membership).
func TestLocalRestartKeepsCap(t *testing.T) {
	srv := redistest.Start(t)
	e := newLocalEnv(t, srv.Client(t))
	for p := byte(1); p <= 3; p++ {
		ev := acctEv("u1", 1, p, acT0+100, 0, 0, 0)
		e.a.Apply(&ev, acE, nil)
	}
	if err := e.f.Stop(e.ctx); err != nil {
		t.Fatal(err)
	}
	e2 := newLocalEnv(t, srv.Client(t))
	fourth := acctEv("u1", 1, 4, acT0+400, 0, 0, 0)
	if out := e2.a.Apply(&fourth, acE, nil); out.Code != CodeCapped {
		t.Fatalf("a fourth client after the restart: %v, want capped", out.Code)
	}
	third := acctEv("u1", 1, 3, acT0+400, 0, 0, 0)
	if out := e2.a.Apply(&third, acE, nil); out.Code != CodeAccounted || out.Seconds != 300 {
		t.Fatalf("a restored client: %+v, want accounted, 300 s", out)
	}
}

// TestLocalUnusableSnapshotStartsEmpty: a snapshot whose part is gone (or
// garbled) does not stop the tracker: it starts with no sessions.
func TestLocalUnusableSnapshotStartsEmpty(t *testing.T) {
	srv := redistest.Start(t)
	e := newLocalEnv(t, srv.Client(t))
	seedRun(e.a, 0, 2)
	if err := e.f.Stop(e.ctx); err != nil {
		t.Fatal(err)
	}
	gen := e.rdb.HGet(e.ctx, KeyLocalSnapshot, "gen").Val()
	// A valid record first, so one is restored before the garbage is met.
	good := appendRecord(nil, utKey{user: "u2", ih: [20]byte{2}}, &utRecord{sessions: []localSession{{seen: acT0, touched: acT0, member: true}}})
	e.rdb.Set(e.ctx, snapPartKey(gen, 0), append(good, "\x05\x00garbage"...), 0)
	e2 := newLocalEnv(t, srv.Client(t))
	if live := sweepAll(e2.a, acT0); live != 0 {
		t.Fatalf("%d sessions restored from a garbled snapshot, want none", live)
	}
	ev := acctEv("u1", 1, 1, acT0+1000, 0, 0, 0)
	if out := e2.a.Apply(&ev, acE, nil); out.Code != CodeNew {
		t.Fatalf("%v, want new", out.Code)
	}
}
