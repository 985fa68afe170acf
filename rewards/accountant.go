package rewards

import (
	"context"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
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
	// A session must outlive two gaps and an epoch; epoch data must outlive
	// retention plus the epoch still being written and its grace.
	a.sessionTTL = 2*a.maxGap + a.epochLen
	a.epochTTL = int64(cfg.Epoch.Retention/time.Second) + 2*a.epochLen
	// One call credits at most min(epoch, max_gap) seconds to one epoch:
	// seconds x weight must stay exact in Lua.
	a.maxWeight = maxExact / min(a.epochLen, a.maxGap)
	_, a.ordered = rdb.(*redis.Client)
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

// prepared is one checked event with its script arguments.
type prepared struct {
	idx             int
	first, nowEpoch int64
	sess, set, cred string
	args            [11]any // ARGV +1 .. +11 of the event in account.lua
}

// chunk is the events of one user that go to Redis in one EVALSHA.
type chunk struct {
	user             string
	preps            []*prepared
	minFirst, maxNow int64
}

// Account applies events in order with one pipelined batch: first the users
// are added to KeyEpochUsers of every open epoch their credit may touch,
// then account.lua runs once per user (per up to 256 events of a user),
// applying that user's events in order. Users share no keys, so this gives
// exactly the outcomes of applying every event alone, in order. A crash
// between the two leaves a user with no points, never points without a
// user. Epochs below minOpenEpoch (the settler's view of sealed epochs) are
// never written. pools names the pools covering a torrent; nil means the
// global pool only.
//
// The outcomes match events one to one. On error, events whose Code is
// CodeError were not applied; the others were.
func (a *Accountant) Account(ctx context.Context, events []Event, minOpenEpoch int64, pools func(infoHash [20]byte) []string) ([]Outcome, error) {
	out := make([]Outcome, len(events))
	if len(events) == 0 {
		return out, nil
	}
	minOpen := min(max(minOpenEpoch, -maxExact), maxExact)
	var errs []error
	preps := make([]prepared, len(events))
	type epochUser struct {
		e int64
		u string
	}
	seenEU := make(map[epochUser]struct{})
	epochUsers := make(map[int64][]any, 2)
	type ipEntry struct{ key, ip string }
	seenIP := make(map[ipEntry]struct{})
	var ipAdds []ipEntry
	byUser := make(map[string]int) // user -> its open chunk
	tk := make(map[userTorrent]*userTorrentKeys)
	var chunks []*chunk
	for i := range events {
		p := &preps[i]
		ev := &events[i]
		if err := a.prepare(i, ev, pools, tk, p); err != nil {
			errs = append(errs, err)
			continue
		}
		for e := max(p.first, minOpen); e <= p.nowEpoch; e++ {
			if _, ok := seenEU[epochUser{e, ev.User}]; !ok {
				seenEU[epochUser{e, ev.User}] = struct{}{}
				epochUsers[e] = append(epochUsers[e], ev.User)
			}
		}
		if ev.IP != ([16]byte{}) && p.nowEpoch >= minOpen {
			ip := ipEntry{KeyTorrentIPs(ev.User, torrentKeys(tk, ev.User, ev.InfoHash).ih, p.nowEpoch), netip.AddrFrom16(ev.IP).Unmap().String()}
			if _, ok := seenIP[ip]; !ok {
				seenIP[ip] = struct{}{}
				ipAdds = append(ipAdds, ip)
			}
		}
		ci, ok := byUser[ev.User]
		if ok {
			c := chunks[ci]
			if len(c.preps) < maxCallEvents && max(c.maxNow, p.nowEpoch)-min(c.minFirst, p.first) < maxCallEpochs {
				c.preps = append(c.preps, p)
				c.minFirst, c.maxNow = min(c.minFirst, p.first), max(c.maxNow, p.nowEpoch)
				continue
			}
		}
		byUser[ev.User] = len(chunks)
		chunks = append(chunks, &chunk{user: ev.User, preps: []*prepared{p}, minFirst: p.first, maxNow: p.nowEpoch})
	}
	if len(chunks) == 0 {
		return out, errors.Join(errs...)
	}

	pipe := a.rdb.Pipeline()
	var sadds []*redis.IntCmd
	for e, users := range epochUsers {
		k := KeyEpochUsers(e)
		sadds = append(sadds, pipe.SAdd(ctx, k, users...))
		pipe.Expire(ctx, k, time.Duration(a.epochTTL)*time.Second)
	}
	if !a.ordered && len(sadds) > 0 {
		// Cross-node pipelines run in parallel: make the users land first.
		if _, err := pipe.Exec(ctx); err != nil {
			return out, fmt.Errorf("rewards: account: add epoch users: %w", err)
		}
		pipe = a.rdb.Pipeline()
		sadds = nil
	}
	// Where each user announced a torrent from, per epoch: receipt checks
	// refuse upload between two users who share an address.
	expired := make(map[string]struct{}, len(ipAdds))
	for _, ip := range ipAdds {
		pipe.SAdd(ctx, ip.key, ip.ip)
		if _, ok := expired[ip.key]; !ok {
			expired[ip.key] = struct{}{}
			pipe.Expire(ctx, ip.key, time.Duration(a.epochTTL)*time.Second)
		}
	}
	type call struct {
		keys []string
		args []any
	}
	calls := make([]call, len(chunks))
	cmds := make([]*redis.Cmd, len(chunks))
	for j, c := range chunks {
		keys, args := a.callArgs(c, minOpen)
		calls[j] = call{keys, args}
		cmds[j] = a.script.EvalSha(ctx, pipe, keys, args...)
	}
	_, _ = pipe.Exec(ctx) // errors are read per command below
	for _, s := range sadds {
		if err := s.Err(); err != nil {
			errs = append(errs, fmt.Errorf("rewards: account: add epoch users: %w", err))
			break
		}
	}

	// NOSCRIPT (script cache flushed, server restarted or failed over): load
	// the script and retry exactly the calls that were refused. A refused
	// EVALSHA did nothing, so the retry cannot count anything twice, and an
	// event retried after a later one of its session succeeded is "late".
	var retry []int
	for j, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			retry = append(retry, j)
		}
	}
	if len(retry) > 0 {
		if err := a.script.Load(ctx, a.rdb).Err(); err != nil {
			return out, fmt.Errorf("rewards: account: load account.lua: %w", err)
		}
		pipe = a.rdb.Pipeline()
		for _, j := range retry {
			cmds[j] = a.script.EvalSha(ctx, pipe, calls[j].keys, calls[j].args...)
		}
		_, _ = pipe.Exec(ctx)
	}

	failed, total := 0, 0
	var firstErr error
	for j, cmd := range cmds {
		c := chunks[j]
		total += len(c.preps)
		outs, err := parseOutcomes(cmd, len(c.preps))
		if err != nil {
			failed += len(c.preps)
			if firstErr == nil {
				ev := &events[c.preps[0].idx]
				firstErr = fmt.Errorf("rewards: account events of user %s (event %d, torrent %x, and %d more): %w", ev.User, c.preps[0].idx, ev.InfoHash, len(c.preps)-1, err)
			}
			continue
		}
		for k, p := range c.preps {
			out[p.idx] = outs[k]
		}
	}
	if failed > 0 {
		errs = append(errs, fmt.Errorf("%w (%d of %d events failed)", firstErr, failed, total))
	}
	return out, errors.Join(errs...)
}

// callArgs builds the KEYS and ARGV of one chunk (see account.lua).
func (a *Accountant) callArgs(c *chunk, minOpen int64) ([]string, []any) {
	nEpochs := int(c.maxNow - c.minFirst + 1)
	keys := make([]string, 0, nEpochs+2*len(c.preps)+1)
	for e := c.minFirst; e <= c.maxNow; e++ {
		keys = append(keys, KeyUserEpoch(c.user, e))
	}
	index := make(map[string]int, 2*len(c.preps))
	keyIndex := func(k string) int {
		if i, ok := index[k]; ok {
			return i
		}
		keys = append(keys, k)
		index[k] = len(keys) // 1-based, as Lua
		return len(keys)
	}
	args := make([]any, 0, 10+14*len(c.preps))
	args = append(args,
		len(c.preps),                             // 1 n
		a.epochLen,                               // 2 epoch_len_s
		minOpen,                                  // 3 min_open_epoch
		a.maxGap,                                 // 4 max_gap_s
		min(a.scoring.MaxRate, uint64(maxExact)), // 5 max_rate
		a.scoring.MaxPeersPerTorrent,             // 6 max_sessions
		a.sessionTTL,                             // 7 session_ttl_s
		a.epochTTL,                               // 8 epoch_ttl_s
		c.minFirst,                               // 9 epoch_base
		1,                                        // 10 epoch_key0
	)
	for _, p := range c.preps {
		args = append(args, p.args[:]...)
		args = append(args, keyIndex(p.sess), keyIndex(p.set), keyIndex(p.cred))
	}
	return keys, args
}

// prepare checks one event and fills p with its keys and arguments.
func (a *Accountant) prepare(i int, ev *Event, pools func([20]byte) []string, tk map[userTorrent]*userTorrentKeys, p *prepared) error {
	if ev.User == "" {
		return fmt.Errorf("rewards: account event %d: empty user id", i)
	}
	if ev.Time <= 0 || ev.Time > maxExact/2 {
		return fmt.Errorf("rewards: account event %d: time %d out of range", i, ev.Time)
	}
	poolArg := GlobalPool
	if pools != nil {
		ps := pools(ev.InfoHash)
		for _, p := range ps {
			if p == "" || strings.ContainsRune(p, ',') {
				return fmt.Errorf("rewards: account event %d: bad pool id %q", i, p)
			}
		}
		poolArg = strings.Join(ps, ",")
	}

	now := ev.Time
	p.idx = i
	p.nowEpoch = a.epoch.EpochOf(now)
	p.first = a.epoch.EpochOf(now - a.maxGap)

	t := torrentKeys(tk, ev.User, ev.InfoHash)
	pid := hex.EncodeToString(ev.PeerID[:])
	p.sess = KeySession(ev.User, t.ih, pid)
	p.set, p.cred = t.set, t.cred

	size := ev.Size
	if size <= 0 || size > maxExact {
		size = maxExact // unknown size: no download cap beyond the rate
	}
	weight := min(max(a.scoring.Weight(ev.Size, ev.Seeders), 0), a.maxWeight)
	stopped := "0"
	if ev.Stopped {
		stopped = "1"
	}
	p.args = [11]any{
		now,                                  // +1 now
		p.first,                              // +2 first_epoch
		p.nowEpoch,                           // +3 now_epoch
		size,                                 // +4 size
		weight,                               // +5 weight
		min(ev.Uploaded, uint64(maxExact)),   // +6 uploaded
		min(ev.Downloaded, uint64(maxExact)), // +7 downloaded
		min(ev.Left, uint64(maxExact)),       // +8 left
		stopped,                              // +9 stopped
		pid,                                  // +10 session_id
		poolArg,                              // +11 pools
	}
	return nil
}

// userTorrent names a user's torrent.
type userTorrent struct {
	user string
	ih   [20]byte
}

// userTorrentKeys are the keys of a user's torrent, built once per batch.
type userTorrentKeys struct {
	ih, set, cred string
}

func torrentKeys(tk map[userTorrent]*userTorrentKeys, user string, ih [20]byte) *userTorrentKeys {
	k := userTorrent{user, ih}
	if t, ok := tk[k]; ok {
		return t
	}
	h := hex.EncodeToString(ih[:])
	t := &userTorrentKeys{ih: h, set: KeySessions(user, h), cred: KeyCredited(user, h)}
	tk[k] = t
	return t
}

// parseOutcomes reads the 5 integers per event of one call.
func parseOutcomes(cmd *redis.Cmd, n int) ([]Outcome, error) {
	v, err := cmd.Int64Slice()
	if err != nil {
		return nil, err
	}
	if len(v) != 5*n {
		return nil, fmt.Errorf("unexpected reply of %d integers for %d events", len(v), n)
	}
	out := make([]Outcome, n)
	for i := range out {
		r := v[5*i : 5*i+5]
		if r[0] < int64(CodeNew) || r[0] > int64(CodeLate) {
			return nil, fmt.Errorf("unexpected reply %v for event %d", r, i)
		}
		out[i] = Outcome{Code: Code(r[0]), Seconds: r[1], Up: r[2], Down: r[3], Sealed: r[4]}
	}
	return out, nil
}
