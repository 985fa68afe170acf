package rewards

import (
	"context"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seedpay/seedpay/internal/redistest"
)

// Test clock: epochs of an hour; E is an epoch, T0 its first second.
const (
	acL       = 3600
	acE       = int64(480_000)
	acT0      = acE * acL
	acSize    = int64(10 << 30)
	acSeeders = 4
	acRate    = 1000 // bytes/s
	acGap     = 46 * 60
	acAllOpen = int64(0) // min_open_epoch that seals nothing
)

func acctConfig() Config {
	c := DefaultConfig()
	c.Scoring.MaxRate = acRate
	c.Scoring.MaxGap = acGap * time.Second
	c.Scoring.MaxPeersPerTorrent = 3
	c.Epoch.Length = acL * time.Second
	return c
}

type acctEnv struct {
	t   testing.TB
	ctx context.Context
	rdb *redis.Client
	a   *Accountant
	w   int64 // weight of a default event
}

func newAcctEnv(t testing.TB) *acctEnv {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	cfg := acctConfig()
	a, err := NewAccountant(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &acctEnv{t: t, ctx: context.Background(), rdb: rdb, a: a, w: cfg.Scoring.Weight(acSize, acSeeders)}
}

// ev is an announce of user u, torrent tor, client peer at Unix second at.
func acctEv(u string, tor, peer byte, at int64, up, down, left uint64) Event {
	e := Event{User: u, Size: acSize, Seeders: acSeeders, Uploaded: up, Downloaded: down, Left: left, Time: at}
	e.InfoHash[0], e.PeerID[0] = tor, peer
	return e
}

func acctStopped(e Event) Event { e.Stopped = true; return e }

func (e *acctEnv) account(minOpen int64, pools func([20]byte) []string, evs ...Event) []Outcome {
	e.t.Helper()
	out, err := e.a.Account(e.ctx, evs, minOpen, pools)
	if err != nil {
		e.t.Fatalf("Account: %v", err)
	}
	return out
}

// seq accounts each event in its own batch, all epochs open, global pool.
func (e *acctEnv) seq(evs ...Event) []Outcome {
	e.t.Helper()
	var out []Outcome
	for _, x := range evs {
		out = append(out, e.account(acAllOpen, nil, x)...)
	}
	return out
}

func (e *acctEnv) field(key, f string) int64 {
	e.t.Helper()
	v, err := e.rdb.HGet(e.ctx, key, f).Result()
	if errors.Is(err, redis.Nil) {
		return 0
	}
	if err != nil {
		e.t.Fatal(err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		e.t.Fatalf("%s %s = %q: %v", key, f, v, err)
	}
	return n
}

func (e *acctEnv) exists(key string) bool {
	e.t.Helper()
	n, err := e.rdb.Exists(e.ctx, key).Result()
	if err != nil {
		e.t.Fatal(err)
	}
	return n == 1
}

func acctSessKey(u string, tor, peer byte) string {
	var ih, pid [20]byte
	ih[0], pid[0] = tor, peer
	return KeySession(u, hex.EncodeToString(ih[:]), hex.EncodeToString(pid[:]))
}

func acctTorHex(tor byte) string {
	var ih [20]byte
	ih[0] = tor
	return hex.EncodeToString(ih[:])
}

func acctTotalSeconds(out []Outcome) (s int64) {
	for _, o := range out {
		s += o.Seconds
	}
	return s
}

func TestFirstAnnounceNoCredit(t *testing.T) {
	e := newAcctEnv(t)
	out := e.seq(acctEv("u1", 1, 1, acT0+100, 5000, 7000, 0))
	if out[0] != (Outcome{Code: CodeNew}) {
		t.Fatalf("outcome %+v, want new with nothing", out[0])
	}
	if e.exists(KeyUserEpoch("u1", acE)) {
		t.Fatal("first announce wrote the epoch hash")
	}
	h, _ := e.rdb.HGetAll(e.ctx, acctSessKey("u1", 1, 1)).Result()
	want := map[string]string{"up": "5000", "down": "7000", "seen": strconv.FormatInt(acT0+100, 10), "seeding": "1"}
	if fmt.Sprint(h) != fmt.Sprint(want) {
		t.Fatalf("session %v, want %v", h, want)
	}
	var pid [20]byte
	pid[0] = 1
	if s, err := e.rdb.ZScore(e.ctx, KeySessions("u1", acctTorHex(1)), hex.EncodeToString(pid[:])).Result(); err != nil || int64(s) != acT0+100 {
		t.Fatalf("session set score %v, %v; want %d", s, err, acT0+100)
	}
	if ttl := e.rdb.TTL(e.ctx, acctSessKey("u1", 1, 1)).Val(); ttl <= 0 || ttl > e.a.SessionTTL() {
		t.Fatalf("session TTL %s, want (0, %s]", ttl, e.a.SessionTTL())
	}
}

func TestSeederCreditsExactSeconds(t *testing.T) {
	e := newAcctEnv(t)
	out := e.seq(
		acctEv("u1", 1, 1, acT0+100, 0, 0, 0),
		acctEv("u1", 1, 1, acT0+700, 0, 0, 0),
		acctEv("u1", 1, 1, acT0+1234, 0, 0, 0),
	)
	if out[1].Code != CodeAccounted || out[1].Seconds != 600 || out[2].Seconds != 534 {
		t.Fatalf("outcomes %+v, want 600 then 534 seconds", out)
	}
	k := KeyUserEpoch("u1", acE)
	if got := e.field(k, "seed_s"); got != 1134 {
		t.Fatalf("seed_s = %d, want 1134", got)
	}
	if got, want := e.field(k, "pts:global"), 1134*e.w; got != want || want == 0 {
		t.Fatalf("pts:global = %d, want %d (1134 x weight %d)", got, want, e.w)
	}
	if e.exists(KeyUserEpoch("u1", acE-1)) || e.exists(KeyUserEpoch("u1", acE+1)) {
		t.Fatal("credit landed in a neighbouring epoch")
	}
	if ttl := e.rdb.TTL(e.ctx, k).Val(); ttl <= e.a.EpochTTL()-time.Minute || ttl > e.a.EpochTTL() {
		t.Fatalf("epoch hash TTL %s, want about %s", ttl, e.a.EpochTTL())
	}
	if got := e.rdb.Get(e.ctx, KeyCredited("u1", acctTorHex(1))).Val(); got != strconv.FormatInt(acT0+1234, 10) {
		t.Fatalf("credited-until %q, want %d", got, acT0+1234)
	}
}

func TestDeltasAndRateClamp(t *testing.T) {
	const el = 100 // seconds between announces: rate cap 100000 bytes
	cases := []struct {
		name             string
		up, down         uint64 // growth over the interval
		wantUp, wantDown int64
	}{
		{"within rate", 5000, 3000, 5000, 3000},
		{"upload over rate", 250_000, 0, 100_000, 0},
		{"download over rate", 0, 500_000, 0, 100_000},
		{"both exactly at rate", 100_000, 100_000, 100_000, 100_000},
		{"nothing", 0, 0, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newAcctEnv(t)
			out := e.seq(
				acctEv("u1", 1, 1, acT0+10, 1000, 2000, 5),
				acctEv("u1", 1, 1, acT0+10+el, 1000+c.up, 2000+c.down, 5),
			)
			if o := out[1]; o.Code != CodeAccounted || o.Up != c.wantUp || o.Down != c.wantDown || o.Seconds != 0 {
				t.Fatalf("outcome %+v, want up %d down %d", o, c.wantUp, c.wantDown)
			}
			k := KeyUserEpoch("u1", acE)
			if got := e.field(k, "up"); got != c.wantUp {
				t.Fatalf("epoch up = %d, want %d", got, c.wantUp)
			}
			if got := e.field(k, "down"); got != c.wantDown {
				t.Fatalf("epoch down = %d, want %d", got, c.wantDown)
			}
			// The clamped excess is discarded: the baseline is the report.
			out = e.seq(acctEv("u1", 1, 1, acT0+20+el, 1000+c.up, 2000+c.down, 5))
			if out[0].Up != 0 || out[0].Down != 0 {
				t.Fatalf("unchanged counters gave %+v", out[0])
			}
		})
	}
}

func TestDownloadClampedToSize(t *testing.T) {
	e := newAcctEnv(t)
	a, b := acctEv("u1", 1, 1, acT0+10, 0, 0, 5), acctEv("u1", 1, 1, acT0+110, 0, 50_000, 5)
	a.Size, b.Size = 1000, 1000 // the rate would allow 100000
	out := e.seq(a, b)
	if out[1].Down != 1000 {
		t.Fatalf("download delta %d, want the size 1000", out[1].Down)
	}
	if got := e.field(KeyUserEpoch("u1", acE), "down"); got != 1000 {
		t.Fatalf("epoch down = %d, want 1000", got)
	}
}

func TestCounterResetStartsNewSession(t *testing.T) {
	cases := []struct {
		name     string
		up, down uint64
	}{
		{"upload went down", 100, 9000},
		{"download went down", 9000, 100},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newAcctEnv(t)
			out := e.seq(
				acctEv("u1", 1, 1, acT0+10, 5000, 5000, 0),
				acctEv("u1", 1, 1, acT0+610, c.up, c.down, 0),
			)
			if out[1] != (Outcome{Code: CodeReset}) {
				t.Fatalf("outcome %+v, want a reset with nothing credited", out[1])
			}
			if e.exists(KeyUserEpoch("u1", acE)) {
				t.Fatal("a reset wrote the epoch hash")
			}
			h := e.rdb.HGetAll(e.ctx, acctSessKey("u1", 1, 1)).Val()
			if h["up"] != strconv.FormatUint(c.up, 10) || h["down"] != strconv.FormatUint(c.down, 10) || h["seen"] != strconv.FormatInt(acT0+610, 10) {
				t.Fatalf("session after reset %v", h)
			}
			// The new session earns from the reset on.
			out = e.seq(acctEv("u1", 1, 1, acT0+1210, c.up+200, c.down, 0))
			if out[0].Seconds != 600 || out[0].Up != 200 {
				t.Fatalf("after reset %+v, want 600 s and 200 up", out[0])
			}
		})
	}
}

func TestGapLimit(t *testing.T) {
	cases := []struct {
		gap  int64
		want int64
	}{
		{acGap, acGap},
		{acGap + 1, 0},
		{3 * acGap, 0},
	}
	for _, c := range cases {
		t.Run(strconv.FormatInt(c.gap, 10), func(t *testing.T) {
			e := newAcctEnv(t)
			out := e.seq(acctEv("u1", 1, 1, acT0+10, 0, 0, 0), acctEv("u1", 1, 1, acT0+10+c.gap, 0, 0, 0))
			if out[1].Seconds != c.want {
				t.Fatalf("gap %d credited %d, want %d", c.gap, out[1].Seconds, c.want)
			}
			if got := e.field(KeyUserEpoch("u1", acE), "seed_s"); got != c.want {
				t.Fatalf("seed_s %d, want %d", got, c.want)
			}
		})
	}
}

func TestLeecherGetsNoSeedTime(t *testing.T) {
	cases := []struct {
		name      string
		was, left uint64
		want      int64
	}{
		{"leecher both ends", 100, 50, 0},
		{"completed now", 100, 0, 0},
		{"seeder turned leecher", 0, 100, 0},
		{"seeder both ends", 0, 0, 600}, // control
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newAcctEnv(t)
			out := e.seq(acctEv("u1", 1, 1, acT0+10, 0, 0, c.was), acctEv("u1", 1, 1, acT0+610, 0, 0, c.left))
			if out[1].Seconds != c.want || e.field(KeyUserEpoch("u1", acE), "seed_s") != c.want {
				t.Fatalf("credited %d, want %d", out[1].Seconds, c.want)
			}
		})
	}
}

func TestTwoClientsCreditedOncePerSecond(t *testing.T) {
	e := newAcctEnv(t)
	// Both clients seed the whole time; interleaved in one batch, in order.
	out := e.account(acAllOpen, nil,
		acctEv("u1", 1, 'A', acT0, 0, 0, 0),
		acctEv("u1", 1, 'B', acT0+10, 0, 0, 0),
		acctEv("u1", 1, 'A', acT0+600, 0, 0, 0),
		acctEv("u1", 1, 'B', acT0+610, 0, 0, 0),
		acctEv("u1", 1, 'A', acT0+1200, 0, 0, 0),
		acctEv("u1", 1, 'B', acT0+1800, 0, 0, 0),
	)
	if got := acctTotalSeconds(out); got != 1800 {
		t.Fatalf("credited %d seconds for 1800 wall seconds (%+v)", got, out)
	}
	if got := e.field(KeyUserEpoch("u1", acE), "seed_s"); got != 1800 {
		t.Fatalf("seed_s %d, want 1800", got)
	}
	// Another torrent is credited on its own.
	out = e.seq(acctEv("u1", 2, 'A', acT0+1800, 0, 0, 0), acctEv("u1", 2, 'A', acT0+2000, 0, 0, 0))
	if out[1].Seconds != 200 {
		t.Fatalf("second torrent credited %d, want 200", out[1].Seconds)
	}
}

func TestSessionCap(t *testing.T) {
	e := newAcctEnv(t)
	out := e.seq(
		acctEv("u1", 1, 1, acT0, 0, 0, 0),
		acctEv("u1", 1, 2, acT0+1, 0, 0, 0),
		acctEv("u1", 1, 3, acT0+2, 0, 0, 0),
		acctEv("u1", 1, 4, acT0+3, 0, 0, 0),
		acctEv("u1", 2, 4, acT0+3, 0, 0, 0), // other torrent: its own cap
	)
	for i, want := range []Code{CodeNew, CodeNew, CodeNew, CodeCapped, CodeNew} {
		if out[i].Code != want {
			t.Fatalf("event %d: %s, want %s", i, out[i].Code, want)
		}
	}
	if e.exists(acctSessKey("u1", 1, 4)) {
		t.Fatal("the capped 4th session was stored")
	}
	if n := e.rdb.ZCard(e.ctx, KeySessions("u1", acctTorHex(1))).Val(); n != 3 {
		t.Fatalf("%d tracked sessions, want 3", n)
	}
	// A tracked session still announces; a stopped one frees its place.
	out = e.seq(
		acctEv("u1", 1, 1, acT0+600, 0, 0, 0),
		acctEv("u1", 1, 4, acT0+601, 0, 0, 0),
		acctStopped(acctEv("u1", 1, 2, acT0+602, 0, 0, 0)),
		acctEv("u1", 1, 4, acT0+603, 0, 0, 0),
	)
	for i, want := range []Code{CodeAccounted, CodeCapped, CodeAccounted, CodeNew} {
		if out[i].Code != want {
			t.Fatalf("after stop, event %d: %s, want %s", i, out[i].Code, want)
		}
	}
	// Sessions silent for longer than max_gap (crashed clients) free theirs.
	out = e.seq(
		acctEv("u1", 1, 4, acT0+603+acGap, 0, 0, 0), // keeps announcing
		acctEv("u1", 1, 5, acT0+603+acGap, 0, 0, 0), // 1 and 3 went silent
		acctEv("u1", 1, 6, acT0+603+acGap, 0, 0, 0),
		acctEv("u1", 1, 7, acT0+603+acGap, 0, 0, 0),
	)
	for i, want := range []Code{CodeAccounted, CodeNew, CodeNew, CodeCapped} {
		if out[i].Code != want {
			t.Fatalf("after silence, event %d: %s, want %s", i, out[i].Code, want)
		}
	}
}

func TestStoppedCreditsThenDeletes(t *testing.T) {
	e := newAcctEnv(t)
	out := e.seq(acctEv("u1", 1, 1, acT0+10, 0, 0, 0), acctStopped(acctEv("u1", 1, 1, acT0+310, 700, 0, 0)))
	if o := out[1]; o.Code != CodeAccounted || o.Seconds != 300 || o.Up != 700 {
		t.Fatalf("stopped: %+v, want 300 s and 700 up", o)
	}
	if got := e.field(KeyUserEpoch("u1", acE), "seed_s"); got != 300 {
		t.Fatalf("seed_s %d, want 300", got)
	}
	if e.exists(acctSessKey("u1", 1, 1)) || e.exists(KeySessions("u1", acctTorHex(1))) {
		t.Fatal("stopped session still stored")
	}
	// The same client coming back starts a fresh session: no credit for the pause.
	out = e.seq(acctEv("u1", 1, 1, acT0+900, 700, 0, 0), acctEv("u1", 1, 1, acT0+960, 700, 0, 0))
	if out[0].Code != CodeNew || out[1].Seconds != 60 {
		t.Fatalf("after restart %+v, want new then 60 s", out)
	}
	// A stop without a session stores nothing.
	out = e.seq(acctStopped(acctEv("u1", 3, 1, acT0+10, 0, 0, 0)))
	if out[0].Code != CodeNew || e.exists(acctSessKey("u1", 3, 1)) {
		t.Fatalf("lone stop: %+v", out[0])
	}
}

func TestEpochBoundarySplit(t *testing.T) {
	b := (acE + 1) * acL // start of epoch E+1
	cases := []struct {
		name               string
		minOpen            int64
		wantE, wantE1      int64
		wantSecs, wantSeal int64
	}{
		{"both open", acE, 100, 250, 350, 0},
		{"E sealed: its seconds carry into E+1", acE + 1, 0, 350, 350, 100},
		{"both sealed: a late event earns nothing", acE + 2, 0, 0, 0, 350},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newAcctEnv(t)
			e.account(acE, nil, acctEv("u1", 1, 1, b-100, 0, 0, 0))
			out := e.account(c.minOpen, nil, acctEv("u1", 1, 1, b+250, 4000, 0, 0))
			if out[0].Seconds != c.wantSecs || out[0].Sealed != c.wantSeal {
				t.Fatalf("outcome %+v, want %d credited and %d sealed", out[0], c.wantSecs, c.wantSeal)
			}
			for ep, want := range map[int64]int64{acE: c.wantE, acE + 1: c.wantE1} {
				k := KeyUserEpoch("u1", ep)
				if got := e.field(k, "seed_s"); got != want {
					t.Fatalf("epoch %d seed_s %d, want %d", ep, got, want)
				}
				if got := e.field(k, "pts:global"); got != want*e.w {
					t.Fatalf("epoch %d points %d, want %d", ep, got, want*e.w)
				}
				if want == 0 && e.exists(k) {
					t.Fatalf("sealed epoch %d was written", ep)
				}
			}
			// Byte statistics go to the epoch of now, unless it is sealed.
			if got, want := e.field(KeyUserEpoch("u1", acE+1), "up"), int64(4000); c.minOpen > acE+1 && got != 0 || c.minOpen <= acE+1 && got != want {
				t.Fatalf("epoch E+1 up %d (min open %d)", got, c.minOpen)
			}
			// Carried seconds are not credited a second time later.
			out = e.account(c.minOpen, nil, acctEv("u1", 1, 1, b+300, 4000, 0, 0))
			if out[0].Seconds+out[0].Sealed != 50 {
				t.Fatalf("next interval %+v, want 50 s", out[0])
			}
		})
	}
}

func TestPools(t *testing.T) {
	e := newAcctEnv(t)
	pools := func(ih [20]byte) []string {
		if ih[0] == 7 {
			return []string{GlobalPool, "p7"}
		}
		return []string{GlobalPool}
	}
	e.account(acAllOpen, pools, acctEv("u1", 7, 1, acT0, 0, 0, 0), acctEv("u1", 1, 1, acT0, 0, 0, 0))
	e.account(acAllOpen, pools, acctEv("u1", 7, 1, acT0+600, 0, 0, 0), acctEv("u1", 1, 1, acT0+900, 0, 0, 0))
	k := KeyUserEpoch("u1", acE)
	if got := e.field(k, "pts:global"); got != 1500*e.w {
		t.Fatalf("pts:global %d, want %d", got, 1500*e.w)
	}
	if got := e.field(k, "pts:p7"); got != 600*e.w {
		t.Fatalf("pts:p7 %d, want %d (torrent 7 only)", got, 600*e.w)
	}
	// A torrent no pool covers earns seed seconds but no points.
	e.account(acAllOpen, func([20]byte) []string { return nil }, acctEv("u2", 1, 1, acT0, 0, 0, 0), acctEv("u2", 1, 1, acT0+60, 0, 0, 0))
	k = KeyUserEpoch("u2", acE)
	if h := e.rdb.HGetAll(e.ctx, k).Val(); len(h) != 1 || h["seed_s"] != "60" {
		t.Fatalf("no-pool epoch hash %v, want only seed_s 60", h)
	}
	// A bad pool id fails that event only.
	out, err := e.a.Account(e.ctx, []Event{acctEv("u3", 1, 1, acT0, 0, 0, 0), acctEv("u4", 2, 1, acT0, 0, 0, 0)}, acAllOpen,
		func(ih [20]byte) []string {
			if ih[0] == 1 {
				return []string{"a,b"}
			}
			return nil
		})
	if err == nil || out[0].Code != CodeError || out[1].Code != CodeNew {
		t.Fatalf("bad pool: %+v, %v", out, err)
	}
	// The accountant remembers pool lists across batches: a valid ["a",
	// "b"] seen first must not make the bad ["a,b"] (the same joined text)
	// acceptable later.
	split := func([20]byte) []string { return []string{"a", "b"} }
	joined := func([20]byte) []string { return []string{"a,b"} }
	if out, err := e.a.Account(e.ctx, []Event{acctEv("u5", 1, 1, acT0, 0, 0, 0)}, acAllOpen, split); err != nil || out[0].Code != CodeNew {
		t.Fatalf("pools a and b: %+v, %v", out, err)
	}
	if out, err := e.a.Account(e.ctx, []Event{acctEv("u6", 1, 1, acT0, 0, 0, 0)}, acAllOpen, joined); err == nil || out[0].Code != CodeError {
		t.Fatalf("pool \"a,b\" after pools a and b: %+v, %v; want refused", out, err)
	}
}

func TestEpochUsers(t *testing.T) {
	e := newAcctEnv(t)
	b := (acE + 1) * acL
	// now - max_gap is in E, now in E+1: both epochs may be credited.
	e.account(acE, nil, acctEv("u1", 1, 1, b+100, 0, 0, 5))
	for _, ep := range []int64{acE, acE + 1} {
		if !e.rdb.SIsMember(e.ctx, KeyEpochUsers(ep), "u1").Val() {
			t.Fatalf("u1 not in the users of epoch %d", ep)
		}
		if ttl := e.rdb.TTL(e.ctx, KeyEpochUsers(ep)).Val(); ttl <= 0 || ttl > e.a.EpochTTL() {
			t.Fatalf("users of %d TTL %s", ep, ttl)
		}
	}
	// Sealed epochs are left alone.
	e.account(acE+1, nil, acctEv("u2", 1, 1, b+100, 0, 0, 5))
	if e.rdb.SIsMember(e.ctx, KeyEpochUsers(acE), "u2").Val() || !e.rdb.SIsMember(e.ctx, KeyEpochUsers(acE+1), "u2").Val() {
		t.Fatal("u2: want only the open epoch E+1")
	}
	if e.rdb.SIsMember(e.ctx, KeyEpochUsers(acE-1), "u1").Val() || e.rdb.SIsMember(e.ctx, KeyEpochUsers(acE+2), "u1").Val() {
		t.Fatal("u1 added to an epoch its credit cannot touch")
	}
}

func TestNoScriptRecovery(t *testing.T) {
	e := newAcctEnv(t)
	e.seq(acctEv("u1", 1, 1, acT0, 0, 0, 0)) // fresh server: NOSCRIPT already
	if err := e.rdb.ScriptFlush(e.ctx).Err(); err != nil {
		t.Fatal(err)
	}
	out := e.account(acAllOpen, nil, acctEv("u1", 1, 1, acT0+600, 0, 0, 0), acctEv("u1", 1, 1, acT0+900, 0, 0, 0))
	if acctTotalSeconds(out) != 900 || e.field(KeyUserEpoch("u1", acE), "seed_s") != 900 {
		t.Fatalf("after SCRIPT FLUSH: %+v", out)
	}
}

func TestReplayAndLateEventsCreditNothing(t *testing.T) {
	e := newAcctEnv(t)
	batch := []Event{
		acctEv("u1", 1, 1, acT0, 0, 0, 0),
		acctEv("u1", 1, 1, acT0+600, 4000, 0, 0),
		acctEv("u1", 1, 1, acT0+1200, 8000, 0, 0),
	}
	e.account(acAllOpen, nil, batch...)
	k := KeyUserEpoch("u1", acE)
	before := e.rdb.HGetAll(e.ctx, k).Val()
	out := e.account(acAllOpen, nil, batch...) // a retried flush
	want := []Outcome{{Code: CodeLate}, {Code: CodeLate}, {Code: CodeAccounted}}
	if fmt.Sprint(out) != fmt.Sprint(want) {
		t.Fatalf("replay %+v, want %+v", out, want)
	}
	if after := e.rdb.HGetAll(e.ctx, k).Val(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("replay changed the epoch: %v -> %v", before, after)
	}
	// The late event did not move the baseline back: the next one counts once.
	out = e.seq(acctEv("u1", 1, 1, acT0+1800, 9000, 0, 0))
	if out[0].Seconds != 600 || out[0].Up != 1000 {
		t.Fatalf("after replay %+v, want 600 s and 1000 up", out[0])
	}
}

func TestLargeCountersStayExact(t *testing.T) {
	e := newAcctEnv(t)
	e.seq(acctEv("u1", 1, 1, acT0, math.MaxUint64, math.MaxUint64, math.MaxUint64))
	h := e.rdb.HGetAll(e.ctx, acctSessKey("u1", 1, 1)).Val()
	if h["up"] != "9007199254740991" || h["down"] != "9007199254740991" || h["seeding"] != "0" {
		t.Fatalf("session %v, want counters clamped to 2^53-1", h)
	}
	out := e.seq(acctEv("u1", 1, 1, acT0+10, math.MaxUint64, math.MaxUint64, 0))
	if out[0].Code != CodeAccounted || out[0].Up != 0 {
		t.Fatalf("%+v", out[0])
	}
	// A weight so large that seconds x weight could pass 2^53 is clamped.
	cfg := acctConfig()
	cfg.Epoch.Length, cfg.Scoring.MaxGap = 100_000*time.Second, 100_000*time.Second
	cfg.Scoring.SizeMin, cfg.Scoring.SizeMax = 1e6, 1e6 // weight 1e12
	acc, err := NewAccountant(e.rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if acc.maxWeight >= cfg.Scoring.Weight(0, 1) {
		t.Fatalf("test needs a clamped weight: max %d", acc.maxWeight)
	}
	t0 := int64(20_000) * 100_000
	a, b := acctEv("u2", 1, 1, t0+10, 0, 0, 0), acctEv("u2", 1, 1, t0+99_990, 0, 0, 0)
	if _, err := acc.Account(e.ctx, []Event{a, b}, acAllOpen, nil); err != nil {
		t.Fatal(err)
	}
	got, err := e.rdb.HGet(e.ctx, KeyUserEpoch("u2", 20_000), "pts:global").Int64()
	if want := 99_980 * acc.maxWeight; err != nil || got != want || got > maxExact {
		t.Fatalf("points %d (%v), want %d", got, err, want)
	}
}

func TestNewAccountantValidates(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer rdb.Close()
	if _, err := NewAccountant(nil, acctConfig()); err == nil {
		t.Fatal("nil client accepted")
	}
	bad := acctConfig()
	bad.Scoring.MaxGap = 0
	if _, err := NewAccountant(rdb, bad); err == nil || !strings.Contains(err.Error(), "max_gap") {
		t.Fatalf("bad config: %v", err)
	}
	a, err := NewAccountant(rdb, acctConfig())
	if err != nil {
		t.Fatal(err)
	}
	if a.SessionTTL() != (2*acGap+acL)*time.Second || a.EpochTTL() != 90*24*time.Hour+2*acL*time.Second {
		t.Fatalf("TTLs %s %s", a.SessionTTL(), a.EpochTTL())
	}
	out, err := a.Account(context.Background(), []Event{{User: "", Time: acT0}, {User: "u", Time: 0}}, 0, nil)
	if err == nil || out[0].Code != CodeError || out[1].Code != CodeError {
		t.Fatalf("invalid events: %+v, %v", out, err)
	}
}

// TestClusterClient runs Account through a ClusterClient on a one-node
// cluster: every key of one call must hash to one slot.
// clusterClient is a cluster client of a one-node Redis Cluster owning
// every slot.
func clusterClient(t *testing.T) *redis.ClusterClient {
	t.Helper()
	s := redistest.Start(t, redistest.Option{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"})
	ctx := context.Background()
	direct := s.Client(t)
	if err := direct.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", "0", "16383").Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(direct.ClusterInfo(ctx).Val(), "cluster_state:ok") {
		if time.Now().After(deadline) {
			t.Fatal("cluster not ok")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{s.Addr}})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func TestClusterClient(t *testing.T) {
	ctx := context.Background()
	cc := clusterClient(t)
	a, err := NewAccountant(cc, acctConfig())
	if err != nil {
		t.Fatal(err)
	}
	b := (acE + 1) * acL
	out, err := a.Account(ctx, []Event{acctEv("u1", 1, 1, b-100, 0, 0, 0), acctEv("u2", 1, 1, b-50, 0, 0, 0)}, acAllOpen, nil)
	if err != nil {
		t.Fatal(err)
	}
	out2, err := a.Account(ctx, []Event{acctEv("u1", 1, 1, b+200, 0, 0, 0), acctEv("u2", 1, 1, b+200, 0, 0, 0)}, acAllOpen, nil)
	if err != nil || out[0].Code != CodeNew || out2[0].Seconds != 300 || out2[1].Seconds != 250 {
		t.Fatalf("cluster: %+v %+v %v", out, out2, err)
	}
	if !cc.SIsMember(ctx, KeyEpochUsers(acE+1), "u2").Val() || cc.HGet(ctx, KeyUserEpoch("u1", acE), "seed_s").Val() != "100" {
		t.Fatal("cluster: ledger not written")
	}
}

func TestAnnounceAddressesRecorded(t *testing.T) {
	e := newAcctEnv(t)
	a := acctEv("u1", 1, 1, acT0+10, 0, 0, 0)
	a.IP = netip.MustParseAddr("10.1.2.3").As16()
	b := acctEv("u1", 1, 2, acT0+20, 0, 0, 0)
	b.IP = netip.MustParseAddr("2001:db8::7").As16()
	noIP := acctEv("u1", 1, 3, acT0+30, 0, 0, 0)
	e.seq(a, b, noIP)
	key := KeyTorrentIPs("u1", acctTorHex(1), acE)
	got, err := e.rdb.SMembers(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"10.1.2.3", "2001:db8::7"}) {
		t.Fatalf("addresses %v, want the IPv4 one unmapped and the IPv6 one", got)
	}
	if ttl := e.rdb.TTL(context.Background(), key).Val(); ttl <= 0 {
		t.Fatalf("address set has no TTL (%v)", ttl)
	}
}

// TestBatchEqualsOneByOne is the batching contract: a batch, however it is
// split, gives the same outcomes and leaves the same ledger as the same
// events accounted one at a time by the per-event script it replaced
// (testdata/account_single_v1.lua). Random sessions of 3 users on 3
// torrents (some over the session cap), with restarts, stops, late
// replays, leechers and gaps across epoch boundaries and past max_gap.
func TestBatchEqualsOneByOne(t *testing.T) {
	for seed := range uint64(12) {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			rng := newTestRand(seed)
			evs, pools := randomSessions(rng, seed)
			minOpen := acE // older epochs sealed: carries and drops happen too

			// The reference: the per-event script this batching replaced.
			one := newAcctEnv(t)
			var want []Outcome
			for _, e := range evs {
				want = append(want, one.accountV1(minOpen, pools, e))
			}
			batch := newAcctEnv(t)
			var got []Outcome
			for rest := evs; len(rest) > 0; {
				n := min(len(rest), 1+rng.n(300))
				got = append(got, batch.account(minOpen, pools, rest[:n]...)...)
				rest = rest[n:]
			}
			if len(got) != len(want) {
				t.Fatalf("%d outcomes, want %d", len(got), len(want))
			}
			codes := map[Code]int{}
			for i := range want {
				codes[want[i].Code]++
				if got[i] != want[i] {
					t.Fatalf("event %d %+v: batched %+v, one by one %+v", i, evs[i], got[i], want[i])
				}
			}
			if codes[CodeAccounted] == 0 || codes[CodeLate] == 0 || codes[CodeNew] == 0 || seed%2 == 1 && codes[CodeCapped] == 0 {
				t.Fatalf("outcomes %v: the test should exercise more", codes)
			}
			if a, b := dumpLedger(t, one), dumpLedger(t, batch); a != b {
				t.Fatalf("ledgers differ:\none by one:\n%s\nbatched:\n%s", a, b)
			}
		})
	}
}

// randomSessions is 400 announces of 16 client sessions with restarts,
// seeding changes, stops and replayed older events; odd seeds crowd the
// sessions over the cap. pools covers torrent 1 with pool "p1".
func randomSessions(rng *testRand, seed uint64) ([]Event, func([20]byte) []string) {
	var evs []Event
	type sess struct {
		at        int64
		up, down  uint64
		left      uint64
		user, tor byte
		peer      byte
	}
	// Odd seeds crowd the sessions (about 4 per user and torrent,
	// over the cap of 3); even ones spread them.
	users, tors := 3, 3
	if seed%2 == 1 {
		users, tors = 2, 2
	}
	ss := make([]sess, 16)
	for i := range ss {
		ss[i] = sess{at: acT0 - 200 + int64(rng.n(400)), user: byte(rng.n(users)), tor: byte(rng.n(tors)), peer: byte(i), left: uint64(rng.n(2)) * 100}
	}
	for range 400 {
		s := &ss[rng.n(len(ss))]
		switch r := rng.n(20); {
		case r == 0: // restart: counters go down
			s.up, s.down = s.up/2, 0
		case r == 1:
			s.left = 0
		case r == 2:
			s.left = 50
		}
		s.at += int64(rng.n(acGap * 3 / 2))
		s.up += uint64(rng.n(3 * acRate * 100))
		s.down += uint64(rng.n(acRate * 50))
		e := acctEv("u"+strconv.Itoa(int(s.user)), s.tor, s.peer, s.at, s.up, s.down, s.left)
		e.IP = netip.AddrFrom4([4]byte{10, 0, s.user, s.peer}).As16()
		if rng.n(15) == 0 {
			e = acctStopped(e)
		}
		evs = append(evs, e)
		if rng.n(10) == 0 && len(evs) > 3 { // a replayed older event
			evs = append(evs, evs[len(evs)-1-rng.n(3)])
		}
	}
	pools := func(ih [20]byte) []string {
		if ih[0] == 1 {
			return []string{GlobalPool, "p1"}
		}
		return nil
	}
	return evs, pools
}

// testRand is a tiny deterministic generator (xorshift).
type testRand struct{ s uint64 }

func newTestRand(seed uint64) *testRand { return &testRand{s: seed*0x9e3779b97f4a7c15 + 1} }

func (r *testRand) n(k int) int {
	r.s ^= r.s << 13
	r.s ^= r.s >> 7
	r.s ^= r.s << 17
	return int(r.s % uint64(k))
}

// dumpLedger renders every key with its value and whether it expires.
func dumpLedger(t *testing.T, e *acctEnv) string {
	t.Helper()
	keys, err := e.rdb.Keys(e.ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		var v any
		switch typ := e.rdb.Type(e.ctx, k).Val(); typ {
		case "hash":
			v = e.rdb.HGetAll(e.ctx, k).Val()
		case "zset":
			v = e.rdb.ZRangeWithScores(e.ctx, k, 0, -1).Val()
		case "set":
			m := e.rdb.SMembers(e.ctx, k).Val()
			slices.Sort(m)
			v = m
		default:
			v = e.rdb.Get(e.ctx, k).Val()
		}
		fmt.Fprintf(&b, "%s %v ttl>0=%v\n", k, v, e.rdb.TTL(e.ctx, k).Val() > 0)
	}
	return b.String()
}

//go:embed testdata/account_single_v1.lua
var accountV1Lua string

var accountV1 = redis.NewScript(accountV1Lua)

// accountV1 accounts one event as the accountant did before batching: the
// epoch users and the address, then the one-event script.
func (e *acctEnv) accountV1(minOpen int64, pools func([20]byte) []string, ev Event) Outcome {
	e.t.Helper()
	a := e.a
	now := ev.Time
	nowEpoch, first := a.epoch.EpochOf(now), a.epoch.EpochOf(now-a.maxGap)
	for ep := max(first, minOpen); ep <= nowEpoch; ep++ {
		e.rdb.SAdd(e.ctx, KeyEpochUsers(ep), ev.User)
		e.rdb.Expire(e.ctx, KeyEpochUsers(ep), a.EpochTTL())
	}
	ih, pid := hex.EncodeToString(ev.InfoHash[:]), hex.EncodeToString(ev.PeerID[:])
	if ev.IP != ([16]byte{}) && nowEpoch >= minOpen {
		k := KeyTorrentIPs(ev.User, ih, nowEpoch)
		e.rdb.SAdd(e.ctx, k, netip.AddrFrom16(ev.IP).Unmap().String())
		e.rdb.Expire(e.ctx, k, a.EpochTTL())
	}
	keys := []string{KeySession(ev.User, ih, pid), KeySessions(ev.User, ih), KeyCredited(ev.User, ih)}
	for ep := first; ep <= nowEpoch; ep++ {
		keys = append(keys, KeyUserEpoch(ev.User, ep))
	}
	poolArg := GlobalPool
	if pools != nil {
		poolArg = strings.Join(pools(ev.InfoHash), ",")
	}
	size := ev.Size
	if size <= 0 || size > maxExact {
		size = maxExact
	}
	stopped := "0"
	if ev.Stopped {
		stopped = "1"
	}
	v, err := accountV1.Run(e.ctx, e.rdb, keys,
		now, a.epochLen, first, min(max(minOpen, -maxExact), maxExact), a.maxGap, min(a.scoring.MaxRate, uint64(maxExact)),
		size, min(max(a.scoring.Weight(ev.Size, ev.Seeders), 0), a.maxWeight),
		min(ev.Uploaded, uint64(maxExact)), min(ev.Downloaded, uint64(maxExact)), min(ev.Left, uint64(maxExact)),
		stopped, pid, a.scoring.MaxPeersPerTorrent, a.sessionTTL, a.epochTTL, poolArg).Int64Slice()
	if err != nil || len(v) != 5 {
		e.t.Fatalf("account v1: %v %v", v, err)
	}
	return Outcome{Code: Code(v[0]), Seconds: v[1], Up: v[2], Down: v[3], Sealed: v[4]}
}
