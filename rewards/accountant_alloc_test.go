package rewards

import (
	"context"
	"encoding"
	"encoding/hex"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// acctEdgeEvents are events at the edges of what the packed argument of
// account.lua carries: counters at and past 2^53 and at max uint64, sizes
// unknown and huge, no address, IPv4, IPv4-mapped, IPv6 (the longest text
// form), a user id of 5000 bytes with multi-byte characters, peer ids of
// 0x00 and 0xff bytes, stopped events, the latest allowed time.
func acctEdgeEvents() []Event {
	long := strings.Repeat("ü", 2000) + strings.Repeat("x", 1000)
	var pidFF [20]byte
	for i := range pidFF {
		pidFF[i] = 0xff
	}
	ev := func(u string, tor, peer byte, at int64, up, down, left uint64, ip string) Event {
		e := acctEv(u, tor, peer, at, up, down, left)
		if ip != "" {
			e.IP = netip.MustParseAddr(ip).As16()
		}
		return e
	}
	maxU := uint64(math.MaxUint64)
	evs := []Event{
		ev("u1", 1, 1, acT0+1, maxU, maxU, maxU, ""),
		ev("u1", 1, 1, acT0+11, maxU, maxU, 0, "255.255.255.255"),
		ev("u1", 1, 1, acT0+21, maxU, maxU, 0, "::ffff:10.0.0.1"),
		ev("u1", 2, 2, acT0+1, maxExact, maxExact+1, 0, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
		ev("u1", 2, 2, acT0+acGap, maxExact, maxExact+1, 0, "2001:db8::1"),
		ev(long, 3, 0, acT0+5, 0, 0, 0, "0.0.0.1"),
		ev(long, 3, 0, acT0+65, 1, 1, 0, "2001:db8::2"),
		acctStopped(ev(long, 3, 0, acT0+125, 2, 2, 0, "")),
		acctStopped(ev(long, 4, 9, acT0+125, 2, 2, 0, "10.9.9.9")), // a stop with no session
		ev("u2", 5, 5, maxExact/2-100, 5, 5, 0, "::1"),
		ev("u2", 5, 5, maxExact/2, 1<<40, 1<<40, 0, "::1"),
	}
	evs[3].PeerID = pidFF
	evs[4].PeerID = pidFF
	evs[5].Size, evs[6].Size = 0, 0               // unknown size
	evs[9].Size, evs[10].Size = math.MaxInt64, -1 // huge, then unknown
	evs[9].Seeders, evs[10].Seeders = 0, math.MaxUint32
	return evs
}

// TestPackedEdgeValues accounts the edge events in one batch and one by one
// with the old per-event script (testdata/account_single_v1.lua), whose
// arguments are decimal strings: a value the packed argument mis-encodes
// shows as a different outcome or ledger. It also checks what must land.
func TestPackedEdgeValues(t *testing.T) {
	evs := acctEdgeEvents()
	pools := func(ih [20]byte) []string {
		if ih[0] == 2 {
			return []string{GlobalPool, strings.Repeat("p", 3000), "ü"}
		}
		return []string{GlobalPool}
	}
	minOpen := acE
	one := newAcctEnv(t)
	var want []Outcome
	for _, e := range evs {
		want = append(want, one.accountV1(minOpen, pools, e))
	}
	batch := newAcctEnv(t)
	got := batch.account(minOpen, pools, evs...)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: batched %+v, one by one %+v", i, got[i], want[i])
		}
	}
	if a, b := dumpLedger(t, one), dumpLedger(t, batch); a != b {
		t.Fatalf("ledgers differ:\none by one:\n%s\nbatched:\n%s", a, b)
	}
	// What must land, whatever the reference says.
	if h := batch.rdb.HGetAll(batch.ctx, acctSessKey("u1", 1, 1)).Val(); h["up"] != "9007199254740991" || h["down"] != "9007199254740991" || h["seen"] != strconv.FormatInt(acT0+21, 10) {
		t.Fatalf("session of max counters %v", h)
	}
	ips := batch.rdb.SMembers(batch.ctx, KeyTorrentIPs("u1", acctTorHex(2), acE)).Val()
	if len(ips) != 2 || !strings.Contains(strings.Join(ips, " "), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") {
		t.Fatalf("IPv6 addresses %v", ips)
	}
	if ips := batch.rdb.SMembers(batch.ctx, KeyTorrentIPs("u1", acctTorHex(1), acE)).Val(); len(ips) != 2 {
		t.Fatalf("IPv4 addresses %v, want 255.255.255.255 and 10.0.0.1 (no entry for the zero address)", ips)
	}
	if got[4].Seconds != acGap-1 || got[10].Seconds != 100 || got[7].Seconds != 60 || batch.exists(KeySession(evs[7].User, acctTorHex(3), hex.EncodeToString(make([]byte, 20)))) {
		t.Fatalf("outcomes %+v", got)
	}
}

// captureArgs records the arguments of every EVALSHA sent through rdb.
type captureArgs struct{ calls [][]any }

func (c *captureArgs) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (c *captureArgs) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (c *captureArgs) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if cmd.Name() == "evalsha" {
				c.calls = append(c.calls, append([]any(nil), cmd.Args()...))
			}
		}
		return next(ctx, cmds)
	}
}

// TestPackedLayout decodes the packed argument of real calls with the
// struct.unpack formats of account.lua itself, in Redis, and compares every
// field with the events: Go's layout and the script's formats must agree
// field by field (the batch-vs-one-by-one tests only see the outcomes).
func TestPackedLayout(t *testing.T) {
	formats := regexp.MustCompile(`(?:sunpack\(|local EVENT = )'([^']+)'`).FindAllStringSubmatch(accountLua, -1)
	if len(formats) != 3 {
		t.Fatalf("want the header, pool list and event formats in account.lua, found %v", formats)
	}
	e := newAcctEnv(t)
	if err := e.a.script.Load(e.ctx, e.rdb).Err(); err != nil {
		t.Fatal(err) // no NOSCRIPT retry: one call per user
	}
	capture := &captureArgs{}
	e.rdb.AddHook(capture)
	evs := acctEdgeEvents()
	pools := func(ih [20]byte) []string {
		if ih[0] == 2 {
			return []string{GlobalPool, "p2"}
		}
		return nil
	}
	e.account(acE, pools, evs...)

	decode := `
local P, out = ARGV[1], {}
local function put(...)
  for _, v in ipairs({...}) do
    out[#out + 1] = type(v) == 'number' and string.format('%d', v) or v
  end
end
local h = { struct.unpack('` + formats[0][1] + `', P) }
local pos = table.remove(h)
put(unpack(h))
for j = 1, h[11] do
  local list
  list, pos = struct.unpack('` + formats[1][1] + `', P, pos)
  put(list)
end
for i = 1, h[1] do
  local r = { struct.unpack('` + formats[2][1] + `', P, pos) }
  pos = table.remove(r)
  put(unpack(r))
end
put(#P + 1 - pos)
return out`
	byUser := map[string][]Event{}
	for _, ev := range evs {
		byUser[ev.User] = append(byUser[ev.User], ev)
	}
	if len(capture.calls) != len(byUser) {
		t.Fatalf("%d calls for %d users", len(capture.calls), len(byUser))
	}
	for _, args := range capture.calls {
		nkeys := args[2].(int)
		keys := make([]string, nkeys)
		for i := range keys {
			keys[i] = fmt.Sprint(args[3+i])
		}
		packed, err := args[3+nkeys].(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil || len(args) != 4+nkeys {
			t.Fatalf("arguments %d, %v", len(args), err)
		}
		got, err := e.rdb.Eval(e.ctx, decode, nil, string(packed)).StringSlice()
		if err != nil {
			t.Fatal(err)
		}
		user := strings.TrimPrefix(strings.SplitN(keys[0], "}", 2)[0], "sp:{u:")
		uevs := byUser[user]
		if len(uevs) == 0 {
			t.Fatalf("call for unknown user %q", user)
		}
		first := e.a.epoch.EpochOf(uevs[0].Time - e.a.maxGap)
		var lists []string // pool lists in order of first use
		poolOf := map[string]int{}
		for _, ev := range uevs {
			first = min(first, e.a.epoch.EpochOf(ev.Time-e.a.maxGap))
			l := strings.Join(pools(ev.InfoHash), ",")
			if _, ok := poolOf[l]; !ok {
				lists = append(lists, l)
				poolOf[l] = len(lists)
			}
		}
		want := []string{strconv.Itoa(len(uevs)), "3600", strconv.FormatInt(acE, 10), strconv.FormatInt(e.a.maxGap, 10),
			strconv.Itoa(acRate), "3", strconv.FormatInt(e.a.sessionTTL, 10), strconv.FormatInt(e.a.epochTTL, 10),
			strconv.FormatInt(first, 10), "1", strconv.Itoa(len(lists))}
		want = append(want, lists...)
		key := func(k string) string {
			for i, x := range keys {
				if x == k {
					return strconv.Itoa(i + 1)
				}
			}
			t.Fatalf("key %q not sent", k)
			return ""
		}
		for _, ev := range uevs {
			ih, pid := hex.EncodeToString(ev.InfoHash[:]), hex.EncodeToString(ev.PeerID[:])
			size := ev.Size
			if size <= 0 || size > maxExact {
				size = maxExact
			}
			stopped, ipKey, ip := "0", "0", ""
			if ev.Stopped {
				stopped = "1"
			}
			if ev.IP != ([16]byte{}) {
				ipKey, ip = key(KeyTorrentIPs(ev.User, ih, e.a.epoch.EpochOf(ev.Time))), netip.AddrFrom16(ev.IP).Unmap().String()
			}
			clamp := func(v uint64) string { return strconv.FormatUint(min(v, maxExact), 10) }
			want = append(want,
				strconv.FormatInt(ev.Time, 10), strconv.FormatInt(e.a.epoch.EpochOf(ev.Time-e.a.maxGap), 10),
				strconv.FormatInt(e.a.epoch.EpochOf(ev.Time), 10), strconv.FormatInt(size, 10),
				strconv.FormatInt(min(max(e.a.scoring.Weight(ev.Size, ev.Seeders), 0), e.a.maxWeight), 10),
				clamp(ev.Uploaded), clamp(ev.Downloaded), clamp(ev.Left), stopped, strconv.Itoa(poolOf[strings.Join(pools(ev.InfoHash), ",")]),
				key(KeySession(ev.User, ih, pid)), key(KeySessions(ev.User, ih)), key(KeyCredited(ev.User, ih)), ipKey,
				pid, ip, strconv.FormatInt(ev.Time, 10), clamp(ev.Uploaded), clamp(ev.Downloaded))
		}
		want = append(want, "0") // no bytes left over
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("user %.20s: decoded\n%q\nwant\n%q", user, got, want)
		}
		for i := 0; i < int(e.a.epoch.EpochOf(uevs[len(uevs)-1].Time)-first+1); i++ {
			if keys[i] != KeyUserEpoch(user, first+int64(i)) {
				t.Errorf("KEYS[%d] = %q, want the epoch hash of %d", i+1, keys[i], first+int64(i))
			}
		}
	}
}

// TestAccountAllocations bounds the client side's allocations: a batch of
// 1000 events (100 users x 10 torrents, with addresses) allocates per call
// and per user, not per event. Before the packed argument it was ~37 per event.
func TestAccountAllocations(t *testing.T) {
	e := newAcctEnv(t)
	var batch []Event
	for u := range 100 {
		for tor := range 10 {
			ev := acctEv(fmt.Sprintf("user%03d", u), byte(tor), 1, acT0, 0, 0, 0)
			ev.IP = netip.AddrFrom4([4]byte{10, byte(u), byte(tor), 1}).As16()
			batch = append(batch, ev)
		}
	}
	global := []string{GlobalPool}
	pools := func([20]byte) []string { return global }
	step := func() {
		for j := range batch {
			batch[j].Time += 60
		}
		if _, err := e.a.Account(e.ctx, batch, acAllOpen, pools); err != nil {
			t.Fatal(err)
		}
	}
	step() // sessions exist, buffers are sized
	allocs := testing.AllocsPerRun(5, step)
	if perEvent := allocs / float64(len(batch)); perEvent > 1 {
		t.Fatalf("%.0f allocations for %d events (%.2f per event), want at most 1 per event", allocs, len(batch), perEvent)
	}
}

// TestAccountConcurrent runs Account from several goroutines at once on one
// Accountant: each call has buffers of its own (run with -race).
func TestAccountConcurrent(t *testing.T) {
	e := newAcctEnv(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := "g" + strconv.Itoa(g)
			for i := range 20 {
				out, err := e.a.Account(e.ctx, []Event{acctEv(u, 1, 1, acT0+int64(i)*60, 0, 0, 0), acctEv(u, 2, 1, acT0+int64(i)*60, 0, 0, 0)}, acAllOpen, nil)
				if err != nil {
					errs <- err
					return
				}
				if want := int64(60); i > 0 && (out[0].Seconds != want || out[1].Seconds != want) {
					errs <- fmt.Errorf("%s step %d: %+v", u, i, out)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
