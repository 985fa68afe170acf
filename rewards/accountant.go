package rewards

import (
	"cmp"
	"context"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/account.lua
var accountLua string

// accountScript is shared: its SHA-1 is fixed, and Load is safe concurrently.
var accountScript = redis.NewScript(accountLua)

// maxExact is the largest integer a Lua number (a double) holds exactly.
const maxExact = 1<<53 - 1

// Code says what account.lua did with one event.
type Code int

// Outcome codes. CodeError (0) means the event was not applied: Account
// returns an error naming it.
const (
	CodeError     Code = 0
	CodeNew       Code = 1 // first announce of a session: stored, no credit
	CodeAccounted Code = 2 // an existing session moved on (maybe credited)
	CodeReset     Code = 3 // a counter went down (client restart): new session, no credit
	CodeCapped    Code = 4 // the user has max_peers_per_torrent other live sessions: ignored
	CodeLate      Code = 5 // older than the session's last announce: no credit, state kept
)

func (c Code) String() string {
	switch c {
	case CodeError:
		return "error"
	case CodeNew:
		return "new"
	case CodeAccounted:
		return "accounted"
	case CodeReset:
		return "reset"
	case CodeCapped:
		return "capped"
	case CodeLate:
		return "late"
	}
	return fmt.Sprintf("code(%d)", int(c))
}

// Outcome is what accounting one event did.
type Outcome struct {
	Code    Code
	Seconds int64 // seed seconds credited (to open epochs)
	Sealed  int64 // seed seconds whose epoch was sealed: carried into the oldest open epoch (counted in Seconds), or dropped for a late event
	Up      int64 // clamped upload delta (statistics only)
	Down    int64 // clamped download delta (statistics only)
}

// Accountant turns Events into seed seconds and points in Redis with
// account.lua (one atomic call per user and batch, all keys in the user's
// slot).
//
// Replaying an event is harmless: accounting works on cumulative counters and
// timestamps, so a replayed or older event credits nothing. A failed Account
// may therefore be retried with the same events.
type Accountant struct {
	rdb     redis.UniversalClient
	script  *redis.Script
	epoch   EpochConfig
	scoring ScoringConfig
	// Whole seconds, derived from the config once.
	epochLen, maxGap, sessionTTL, epochTTL int64
	maxWeight                              int64
	// ordered: one connection, so SADD then EVALSHA in one pipeline keeps
	// that order on the server. Cluster and Ring clients split a pipeline by
	// node, so the SADDs go first in a pipeline of their own.
	ordered bool
	sha     any // the script's SHA-1, boxed once
	// spare holds the buffers of the last Account for the next one.
	spare atomic.Pointer[scratch]
}

// NewAccountant validates cfg and prepares the accountant. The script is
// loaded on first use (and again whenever Redis answers NOSCRIPT).
func NewAccountant(rdb redis.UniversalClient, cfg Config) (*Accountant, error) {
	if rdb == nil {
		return nil, errors.New("rewards: NewAccountant: nil redis client")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Accountant{
		rdb:      rdb,
		script:   accountScript,
		epoch:    cfg.Epoch,
		scoring:  cfg.Scoring,
		epochLen: int64(cfg.Epoch.Length / time.Second),
		maxGap:   int64(cfg.Scoring.MaxGap / time.Second),
	}
	// Epoch data must outlive retention plus the epoch still being written
	// and its grace.
	a.sessionTTL = cfg.sessionTTL()
	a.epochTTL = int64(cfg.Epoch.Retention/time.Second) + 2*a.epochLen
	a.maxWeight = cfg.maxWeight()
	_, a.ordered = rdb.(*redis.Client)
	a.sha = a.script.Hash()
	return a, nil
}

// SessionTTL is how long an idle session (and the credited-until mark) lives.
func (a *Accountant) SessionTTL() time.Duration { return time.Duration(a.sessionTTL) * time.Second }

// EpochTTL is the expiry set on every epoch hash and epoch user set written.
func (a *Accountant) EpochTTL() time.Duration { return time.Duration(a.epochTTL) * time.Second }

// Limits of one EVALSHA: Redis runs nothing else while a script runs, and a
// call names every epoch hash its events may touch.
const (
	maxCallEvents = 256
	maxCallEpochs = 128
)

// prepared is one checked event.
type prepared struct {
	idx             int32 // index in events
	pool            int32 // index in scratch.poolStrs
	first, nowEpoch int64
}

// chunk is the events of one user that go to Redis in one EVALSHA.
type chunk struct {
	user             string
	preps            []int32 // indices in scratch.preps, in order
	minFirst, maxNow int64
	argsFrom, argsTo int   // its EVALSHA command: scratch.args[argsFrom:argsTo]
	args             []any // the same, once the arena is complete (kept for a NOSCRIPT retry)
}

// maxKeptArena bounds the memory an Accountant keeps between batches: a
// batch of ~100k events (bytes of keys and packed arguments) or fewer.
const maxKeptArena = 32 << 20

// epochUser is a user with activity in an epoch (one SADD member).
type epochUser struct {
	e int64
	u string
}

// keyID names one key of a call: the (chunk, kind, torrent, peer, epoch)
// it is built from, so a key is found again without building its string.
type keyID struct {
	chunk int32
	kind  uint8
	ih    [20]byte
	pid   [20]byte
	e     int64
}

const (
	kindSession = iota + 1
	kindSet
	kindCred
	kindIPs
	kindPool
)

// bulk is one command argument written from a byte slice: a pointer to it
// fits in an interface without an allocation (a string or []byte does not).
// String gives the cluster client the key for its slot.
type bulk struct{ b []byte }

func (b *bulk) MarshalBinary() ([]byte, error) { return b.b, nil }
func (b *bulk) String() string                 { return string(b.b) }

// scratch is everything Account builds per batch, reused by the next batch
// (an Accountant keeps one; a concurrent Account gets its own).
type scratch struct {
	preps     []prepared
	chunks    []chunk
	byUser    map[string]int32 // user -> its open chunk
	seenEU    map[epochUser]struct{}
	eus       []epochUser
	keyIdx    map[keyID]int32 // key -> KEYS index (1-based) in its call
	poolIdx   map[string]int32
	poolStrs  []string // distinct comma-joined pool lists (each id checked)
	poolBuf   []byte
	recs      []rec
	callPools []int32  // pool lists of the call being built, by batch index
	buf       []byte   // arena: every key and packed argument of the batch
	spans     [][2]int // buf[from:to] of each bulk
	bulks     []bulk
	args      []any
	argBulk   []int32 // per args element: its index in bulks, or -1
	cmds      []*redis.IntSliceCmd
	sadd      []any
}

func newScratch() *scratch {
	return &scratch{
		byUser:  make(map[string]int32),
		seenEU:  make(map[epochUser]struct{}),
		keyIdx:  make(map[keyID]int32),
		poolIdx: make(map[string]int32),
	}
}

// reset empties s for a batch, keeping its memory.
func (s *scratch) reset() {
	s.preps = s.preps[:0]
	for i := range s.chunks {
		s.chunks[i].user, s.chunks[i].args = "", nil // drop the user ids for the GC
	}
	s.chunks = s.chunks[:0]
	clear(s.byUser)
	clear(s.seenEU)
	clear(s.eus)
	s.eus = s.eus[:0]
	clear(s.keyIdx)
	if len(s.poolStrs) > 1024 { // bound what survives between batches
		clear(s.poolIdx)
		s.poolStrs = s.poolStrs[:0]
	}
	s.buf = s.buf[:0]
	s.spans = s.spans[:0]
	clear(s.cmds)
	s.cmds = s.cmds[:0]
	clear(s.args)
	s.args = s.args[:0]
	s.argBulk = s.argBulk[:0]
	clear(s.sadd)
	s.sadd = s.sadd[:0]
}

// arg appends a command argument that is not a bulk.
func (s *scratch) arg(v any) {
	s.args = append(s.args, v)
	s.argBulk = append(s.argBulk, -1)
}

// bulkArg appends buf[from:] as a command argument (set once the arena is
// complete: it may still move).
func (s *scratch) bulkArg(from int) {
	s.args = append(s.args, nil)
	s.argBulk = append(s.argBulk, int32(len(s.spans)))
	s.spans = append(s.spans, [2]int{from, len(s.buf)})
}

// Account applies events in order with one pipelined batch: first the users
// are added to KeyEpochUsers of every open epoch their credit may touch,
// then account.lua runs once per user (per up to 256 events of a user),
// applying that user's events in order and recording the addresses they
// announced from. Users share no keys, so this gives exactly the outcomes
// of applying every event alone, in order. A crash between the two leaves
// a user with no points, never points without a user. Epochs below
// minOpenEpoch (the settler's view of sealed epochs) are never written.
// pools names the pools covering a torrent; nil means the global pool only.
//
// The outcomes match events one to one. On error, events whose Code is
// CodeError were not applied; the others were.
//
// Account reuses its buffers from one batch to the next: the client side
// allocates per call and per user, not per event (BenchmarkAccount).
func (a *Accountant) Account(ctx context.Context, events []Event, minOpenEpoch int64, pools func(infoHash [20]byte) []string) ([]Outcome, error) {
	out := make([]Outcome, len(events))
	if len(events) == 0 {
		return out, nil
	}
	s := a.spare.Swap(nil)
	if s == nil {
		s = newScratch()
	}
	defer func() {
		s.reset()
		if cap(s.buf) <= maxKeptArena {
			a.spare.Store(s)
		}
	}()
	s.reset()
	// Size the arena once (keys and record of an event: ~300 bytes plus
	// the user id in each key) rather than copying it as it doubles.
	s.buf = slices.Grow(s.buf, min(len(events)*(320+4*len(events[0].User)), maxKeptArena))
	minOpen := min(max(minOpenEpoch, -maxExact), maxExact)
	var errs []error
	for i := range events {
		ev := &events[i]
		p, err := a.prepare(s, i, ev, pools)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for e := max(p.first, minOpen); e <= p.nowEpoch; e++ {
			eu := epochUser{e, ev.User}
			if _, ok := s.seenEU[eu]; !ok {
				s.seenEU[eu] = struct{}{}
				s.eus = append(s.eus, eu)
			}
		}
		pi := int32(len(s.preps))
		s.preps = append(s.preps, p)
		if ci, ok := s.byUser[ev.User]; ok {
			c := &s.chunks[ci]
			if len(c.preps) < maxCallEvents && max(c.maxNow, p.nowEpoch)-min(c.minFirst, p.first) < maxCallEpochs {
				c.preps = append(c.preps, pi)
				c.minFirst, c.maxNow = min(c.minFirst, p.first), max(c.maxNow, p.nowEpoch)
				continue
			}
		}
		s.byUser[ev.User] = int32(len(s.chunks))
		if len(s.chunks) < cap(s.chunks) {
			s.chunks = s.chunks[:len(s.chunks)+1]
		} else {
			s.chunks = append(s.chunks, chunk{})
		}
		c := &s.chunks[len(s.chunks)-1]
		c.user, c.preps, c.minFirst, c.maxNow = ev.User, append(c.preps[:0], pi), p.first, p.nowEpoch
	}
	if len(s.chunks) == 0 {
		return out, errors.Join(errs...)
	}

	pipe := a.rdb.Pipeline()
	var sadds []*redis.IntCmd
	if len(s.eus) > 0 {
		// One SADD per epoch; members point at the events' user ids.
		slices.SortStableFunc(s.eus, func(x, y epochUser) int { return cmp.Compare(x.e, y.e) })
		s.sadd = slices.Grow(s.sadd[:0], 3*len(s.eus)) // "sadd", key and members per epoch
		for from := 0; from < len(s.eus); {
			e := s.eus[from].e
			to := from
			args := s.sadd[len(s.sadd):]
			args = append(args, "sadd", KeyEpochUsers(e))
			for ; to < len(s.eus) && s.eus[to].e == e; to++ {
				args = append(args, &s.eus[to].u)
			}
			s.sadd = s.sadd[:len(s.sadd)+len(args)]
			cmd := redis.NewIntCmd(ctx, args...)
			_ = pipe.Process(ctx, cmd)
			sadds = append(sadds, cmd)
			pipe.Expire(ctx, KeyEpochUsers(e), time.Duration(a.epochTTL)*time.Second)
			from = to
		}
	}
	if !a.ordered && len(sadds) > 0 {
		// Cross-node pipelines run in parallel: make the users land first.
		if _, err := pipe.Exec(ctx); err != nil {
			return out, fmt.Errorf("rewards: account: add epoch users: %w", err)
		}
		pipe = a.rdb.Pipeline()
		sadds = nil
	}
	for j := range s.chunks {
		a.callArgs(s, int32(j), events, minOpen)
	}
	// The arena is complete: point the bulks at it, then the arguments at
	// the bulks (neither moves from here on).
	s.bulks = slices.Grow(s.bulks[:0], len(s.spans))[:len(s.spans)]
	for i, sp := range s.spans {
		s.bulks[i].b = s.buf[sp[0]:sp[1]:sp[1]]
	}
	for i, b := range s.argBulk {
		if b >= 0 {
			s.args[i] = &s.bulks[b]
		}
	}
	for j := range s.chunks {
		c := &s.chunks[j]
		c.args = s.args[c.argsFrom:c.argsTo:c.argsTo]
		cmd := redis.NewIntSliceCmd(ctx, c.args...)
		cmd.SetFirstKeyPos(3)
		_ = pipe.Process(ctx, cmd)
		s.cmds = append(s.cmds, cmd)
	}
	_, _ = pipe.Exec(ctx) // errors are read per command below
	for _, c := range sadds {
		if err := c.Err(); err != nil {
			errs = append(errs, fmt.Errorf("rewards: account: add epoch users: %w", err))
			break
		}
	}

	// NOSCRIPT (script cache flushed, server restarted or failed over): load
	// the script and retry exactly the calls that were refused. A refused
	// EVALSHA did nothing, so the retry cannot count anything twice, and an
	// event retried after a later one of its session succeeded is "late".
	var retry []int
	for j, cmd := range s.cmds {
		if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			retry = append(retry, j)
		}
	}
	if len(retry) > 0 {
		if err := a.script.Load(ctx, a.rdb).Err(); err != nil {
			return out, fmt.Errorf("rewards: account: load account.lua: %w", err)
		}
		pipe = a.rdb.Pipeline()
		for _, j := range retry {
			cmd := redis.NewIntSliceCmd(ctx, s.chunks[j].args...)
			cmd.SetFirstKeyPos(3)
			_ = pipe.Process(ctx, cmd)
			s.cmds[j] = cmd
		}
		_, _ = pipe.Exec(ctx)
	}

	failed, total := 0, 0
	var firstErr error
	for j, cmd := range s.cmds {
		c := &s.chunks[j]
		total += len(c.preps)
		if err := a.parseOutcomes(s, c, cmd, out); err != nil {
			failed += len(c.preps)
			if firstErr == nil {
				i := s.preps[c.preps[0]].idx
				ev := &events[i]
				firstErr = fmt.Errorf("rewards: account events of user %s (event %d, torrent %x, and %d more): %w", ev.User, i, ev.InfoHash, len(c.preps)-1, err)
			}
		}
	}
	if failed > 0 {
		errs = append(errs, fmt.Errorf("%w (%d of %d events failed)", firstErr, failed, total))
	}
	return out, errors.Join(errs...)
}

// callArgs builds the EVALSHA of chunk j (see account.lua): its keys and
// packed argument go to the arena, its arguments to c.args.
func (a *Accountant) callArgs(s *scratch, j int32, events []Event, minOpen int64) {
	c := &s.chunks[j]
	first := len(s.args)
	s.arg("evalsha")
	s.arg(a.sha)
	s.arg(nil) // numkeys, below
	for e := c.minFirst; e <= c.maxNow; e++ {
		from := len(s.buf)
		s.buf = strconv.AppendInt(appendUserKey(s.buf, c.user, ":e:"), e, 10)
		s.bulkArg(from)
	}
	// Every other key once, in order of first use; events name them by index.
	s.recs = s.recs[:0]
	s.callPools = s.callPools[:0]
	for _, pi := range c.preps {
		p := &s.preps[pi]
		ev := &events[p.idx]
		var r rec
		id := keyID{chunk: j, kind: kindPool, e: int64(p.pool)}
		if i, ok := s.keyIdx[id]; ok {
			r.pool = i
		} else {
			s.callPools = append(s.callPools, p.pool)
			r.pool = int32(len(s.callPools))
			s.keyIdx[id] = r.pool
		}
		id = keyID{chunk: j, kind: kindSession, ih: ev.InfoHash, pid: ev.PeerID}
		if i, ok := s.keyIdx[id]; ok {
			r.sess = i
		} else {
			from := len(s.buf)
			s.buf = hex.AppendEncode(appendUserKey(s.buf, c.user, ":s:"), ev.InfoHash[:])
			s.buf = hex.AppendEncode(append(s.buf, ':'), ev.PeerID[:])
			r.sess = s.addKey(id, from, first)
		}
		id = keyID{chunk: j, kind: kindSet, ih: ev.InfoHash}
		if i, ok := s.keyIdx[id]; ok {
			r.set = i
		} else {
			from := len(s.buf)
			s.buf = hex.AppendEncode(appendUserKey(s.buf, c.user, ":ss:"), ev.InfoHash[:])
			r.set = s.addKey(id, from, first)
		}
		id.kind = kindCred
		if i, ok := s.keyIdx[id]; ok {
			r.cred = i
		} else {
			from := len(s.buf)
			s.buf = hex.AppendEncode(appendUserKey(s.buf, c.user, ":c:"), ev.InfoHash[:])
			r.cred = s.addKey(id, from, first)
		}
		if ev.IP != ([16]byte{}) && p.nowEpoch >= minOpen {
			id = keyID{chunk: j, kind: kindIPs, ih: ev.InfoHash, e: p.nowEpoch}
			if i, ok := s.keyIdx[id]; ok {
				r.ips = i
			} else {
				from := len(s.buf)
				s.buf = hex.AppendEncode(appendUserKey(s.buf, c.user, ":ip:"), ev.InfoHash[:])
				s.buf = strconv.AppendInt(append(s.buf, ':'), p.nowEpoch, 10)
				r.ips = s.addKey(id, from, first)
			}
		}
		s.recs = append(s.recs, r)
	}
	nkeys := len(s.args) - first - 3

	from := len(s.buf)
	b := s.buf
	for _, v := range [...]int64{
		int64(len(c.preps)),                     // n
		a.epochLen,                              // epoch_len_s
		minOpen,                                 // min_open_epoch
		a.maxGap,                                // max_gap_s
		int64(min(a.scoring.MaxRate, maxExact)), // max_rate
		int64(a.scoring.MaxPeersPerTorrent),     // max_sessions
		a.sessionTTL,                            // session_ttl_s
		a.epochTTL,                              // epoch_ttl_s
		c.minFirst,                              // epoch_base
		1,                                       // epoch_key0
		int64(len(s.callPools)),                 // pools
	} {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	for _, pi := range s.callPools {
		ps := s.poolStrs[pi]
		b = binary.LittleEndian.AppendUint16(b, uint16(len(ps)))
		b = append(b, ps...)
	}
	for k, pi := range c.preps {
		p := &s.preps[pi]
		b = a.appendEvent(b, &events[p.idx], p, &s.recs[k])
	}
	s.buf = b
	s.bulkArg(from)
	s.args[first+2] = nkeys
	c.argsFrom, c.argsTo = first, len(s.args)
}

// rec is where an event's keys and pools are in its call (1-based; 0: none).
type rec struct {
	pool, sess, set, cred, ips int32
}

// addKey records buf[from:] as the next key of the call whose arguments
// start at s.args[first] and returns its KEYS index.
func (s *scratch) addKey(id keyID, from, first int) int32 {
	s.bulkArg(from)
	i := int32(len(s.args) - first - 3) // 1-based, as Lua
	s.keyIdx[id] = i
	return i
}

// appendEvent appends the record of one event to the packed argument:
// 8 int64 (now, first_epoch, now_epoch, size, weight, uploaded,
// downloaded, left), uint8 stopped, 5 uint16 (pools, session, sessions,
// credited, addresses: 1-based indices, 0 for no address set), the peer id
// in 40 hex digits, then as uint8 length + text: the address (length 0:
// none), now, uploaded and downloaded in decimal.
func (a *Accountant) appendEvent(b []byte, ev *Event, p *prepared, r *rec) []byte {
	size := ev.Size
	if size <= 0 || size > maxExact {
		size = maxExact // unknown size: no download cap beyond the rate
	}
	weight := min(max(a.scoring.Weight(ev.Size, ev.Seeders), 0), a.maxWeight)
	for _, v := range [...]uint64{
		uint64(ev.Time),
		uint64(p.first),
		uint64(p.nowEpoch),
		uint64(size),
		uint64(weight),
		min(ev.Uploaded, maxExact),
		min(ev.Downloaded, maxExact),
		min(ev.Left, maxExact),
	} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	stopped := byte(0)
	if ev.Stopped {
		stopped = 1
	}
	b = append(b, stopped)
	for _, v := range [...]int32{r.pool, r.sess, r.set, r.cred, r.ips} {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	b = hex.AppendEncode(b, ev.PeerID[:])
	at := len(b)
	b = append(b, 0)
	if r.ips != 0 {
		b = netip.AddrFrom16(ev.IP).Unmap().AppendTo(b)
		b[at] = byte(len(b) - at - 1) // at most 45 characters
	}
	for _, v := range [...]uint64{uint64(ev.Time), min(ev.Uploaded, maxExact), min(ev.Downloaded, maxExact)} {
		at := len(b)
		b = strconv.AppendUint(append(b, 0), v, 10)
		b[at] = byte(len(b) - at - 1)
	}
	return b
}

// appendUserKey appends "sp:{u:<user>}" and suffix, the start of every key
// of a user (keys.go).
func appendUserKey(b []byte, user, suffix string) []byte {
	b = append(b, "sp:{u:"...)
	b = append(b, user...)
	b = append(b, '}')
	return append(b, suffix...)
}

// prepare checks one event and the pools of its torrent.
func (a *Accountant) prepare(s *scratch, i int, ev *Event, pools func([20]byte) []string) (prepared, error) {
	if ev.User == "" {
		return prepared{}, fmt.Errorf("rewards: account event %d: empty user id", i)
	}
	if ev.Time <= 0 || ev.Time > maxExact/2 {
		return prepared{}, fmt.Errorf("rewards: account event %d: time %d out of range", i, ev.Time)
	}
	if i > math.MaxInt32 {
		return prepared{}, fmt.Errorf("rewards: account event %d: batch too large", i)
	}
	// Each id is checked as it is joined, so the cache below is keyed by
	// valid lists only: ["a,b"] and ["a", "b"] cannot share an entry.
	s.poolBuf = append(s.poolBuf[:0], GlobalPool...)
	if pools != nil {
		s.poolBuf = s.poolBuf[:0]
		for k, p := range pools(ev.InfoHash) {
			if p == "" || strings.ContainsRune(p, ',') || len(p) > math.MaxUint16/2 {
				return prepared{}, fmt.Errorf("rewards: account event %d: bad pool id %q", i, p)
			}
			if k > 0 {
				s.poolBuf = append(s.poolBuf, ',')
			}
			s.poolBuf = append(s.poolBuf, p...)
		}
	}
	if len(s.poolBuf) > math.MaxUint16 {
		return prepared{}, fmt.Errorf("rewards: account event %d: pool list too long", i)
	}
	pool, ok := s.poolIdx[string(s.poolBuf)]
	if !ok {
		pool = int32(len(s.poolStrs))
		s.poolStrs = append(s.poolStrs, string(s.poolBuf))
		s.poolIdx[string(s.poolBuf)] = pool
	}
	return prepared{
		idx:      int32(i),
		pool:     pool,
		nowEpoch: a.epoch.EpochOf(ev.Time),
		first:    a.epoch.EpochOf(ev.Time - a.maxGap),
	}, nil
}

// parseOutcomes reads the 5 integers per event of one call into out.
func (a *Accountant) parseOutcomes(s *scratch, c *chunk, cmd *redis.IntSliceCmd, out []Outcome) error {
	v, err := cmd.Result()
	if err != nil {
		return err
	}
	if len(v) != 5*len(c.preps) {
		return fmt.Errorf("unexpected reply of %d integers for %d events", len(v), len(c.preps))
	}
	for k := range c.preps {
		r := v[5*k : 5*k+5]
		if r[0] < int64(CodeNew) || r[0] > int64(CodeLate) {
			return fmt.Errorf("unexpected reply %v for event %d", r, k)
		}
	}
	for k, pi := range c.preps {
		r := v[5*k : 5*k+5]
		out[s.preps[pi].idx] = Outcome{Code: Code(r[0]), Seconds: r[1], Up: r[2], Down: r[3], Sealed: r[4]}
	}
	return nil
}
