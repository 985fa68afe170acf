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
// account.lua (one atomic call per event, all keys in the user's slot).
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

// call is one prepared EVALSHA.
type call struct {
	idx  int
	keys []string
	args []any
	ips  string // KeyTorrentIPs of this announce, "" without an address
	ip   string
}

// Account applies events in order with one pipelined batch: first the users
// are added to KeyEpochUsers of every open epoch their credit may touch,
// then account.lua runs once per event. A crash between the two leaves a
// user with no points, never points without a user. Epochs below
// minOpenEpoch (the settler's view of sealed epochs) are never written.
// pools names the pools covering a torrent; nil means the global pool only.
//
// The outcomes match events one to one. On error, events whose Code is
// CodeError were not applied; the others were.
func (a *Accountant) Account(ctx context.Context, events []Event, minOpenEpoch int64, pools func(infoHash [20]byte) []string) ([]Outcome, error) {
	out := make([]Outcome, len(events))
	if len(events) == 0 {
		return out, nil
	}
	var errs []error
	calls := make([]call, 0, len(events))
	epochUsers := make(map[int64][]any, 2)
	for i := range events {
		c, err := a.prepare(i, &events[i], minOpenEpoch, pools, epochUsers)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		calls = append(calls, c)
	}
	if len(calls) == 0 {
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
	for _, c := range calls {
		if c.ips != "" {
			pipe.SAdd(ctx, c.ips, c.ip)
			pipe.Expire(ctx, c.ips, time.Duration(a.epochTTL)*time.Second)
		}
	}
	cmds := make([]*redis.Cmd, len(calls))
	for j, c := range calls {
		cmds[j] = a.script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // errors are read per command below
	for _, s := range sadds {
		if err := s.Err(); err != nil {
			errs = append(errs, fmt.Errorf("rewards: account: add epoch users: %w", err))
			break
		}
	}

	// NOSCRIPT (script cache flushed, server restarted or failed over): load
	// the script and retry exactly the events that were refused. A refused
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

	failed := 0
	var firstErr error
	for j, cmd := range cmds {
		o, err := parseOutcome(cmd)
		if err != nil {
			failed++
			if firstErr == nil {
				ev := &events[calls[j].idx]
				firstErr = fmt.Errorf("rewards: account event %d (user %s, torrent %x): %w", calls[j].idx, ev.User, ev.InfoHash, err)
			}
			continue
		}
		out[calls[j].idx] = o
	}
	if failed > 0 {
		errs = append(errs, fmt.Errorf("%w (%d of %d events failed)", firstErr, failed, len(calls)))
	}
	return out, errors.Join(errs...)
}

// prepare builds the keys and arguments of one event and records which
// epoch user sets it belongs in.
func (a *Accountant) prepare(i int, ev *Event, minOpen int64, pools func([20]byte) []string, epochUsers map[int64][]any) (call, error) {
	if ev.User == "" {
		return call{}, fmt.Errorf("rewards: account event %d: empty user id", i)
	}
	if ev.Time <= 0 || ev.Time > maxExact/2 {
		return call{}, fmt.Errorf("rewards: account event %d: time %d out of range", i, ev.Time)
	}
	poolArg := GlobalPool
	if pools != nil {
		ps := pools(ev.InfoHash)
		for _, p := range ps {
			if p == "" || strings.ContainsRune(p, ',') {
				return call{}, fmt.Errorf("rewards: account event %d: bad pool id %q", i, p)
			}
		}
		poolArg = strings.Join(ps, ",")
	}

	now := ev.Time
	nowEpoch := a.epoch.EpochOf(now)
	first := a.epoch.EpochOf(now - a.maxGap)
	for e := max(first, minOpen); e <= nowEpoch; e++ {
		epochUsers[e] = append(epochUsers[e], ev.User)
	}

	ih := hex.EncodeToString(ev.InfoHash[:])
	pid := hex.EncodeToString(ev.PeerID[:])
	keys := make([]string, 3, 3+nowEpoch-first+1)
	keys[0] = KeySession(ev.User, ih, pid)
	keys[1] = KeySessions(ev.User, ih)
	keys[2] = KeyCredited(ev.User, ih)
	for e := first; e <= nowEpoch; e++ {
		keys = append(keys, KeyUserEpoch(ev.User, e))
	}

	size := ev.Size
	if size <= 0 || size > maxExact {
		size = maxExact // unknown size: no download cap beyond the rate
	}
	weight := min(max(a.scoring.Weight(ev.Size, ev.Seeders), 0), a.maxWeight)
	stopped := "0"
	if ev.Stopped {
		stopped = "1"
	}
	args := []any{
		now,                                      // 1 now
		a.epochLen,                               // 2 epoch_len_s
		first,                                    // 3 first_epoch
		min(max(minOpen, -maxExact), maxExact),   // 4 min_open_epoch
		a.maxGap,                                 // 5 max_gap_s
		min(a.scoring.MaxRate, uint64(maxExact)), // 6 max_rate
		size,                                     // 7 size
		weight,                                   // 8 weight
		min(ev.Uploaded, uint64(maxExact)),       // 9 uploaded
		min(ev.Downloaded, uint64(maxExact)),     // 10 downloaded
		min(ev.Left, uint64(maxExact)),           // 11 left
		stopped,                                  // 12 stopped
		pid,                                      // 13 session_id
		a.scoring.MaxPeersPerTorrent,             // 14 max_sessions
		a.sessionTTL,                             // 15 session_ttl_s
		a.epochTTL,                               // 16 epoch_ttl_s
		poolArg,                                  // 17 pools
	}
	c := call{idx: i, keys: keys, args: args}
	if ip := netip.AddrFrom16(ev.IP).Unmap(); ev.IP != ([16]byte{}) && nowEpoch >= minOpen {
		c.ips, c.ip = KeyTorrentIPs(ev.User, ih, nowEpoch), ip.String()
	}
	return c, nil
}

func parseOutcome(cmd *redis.Cmd) (Outcome, error) {
	v, err := cmd.Int64Slice()
	if err != nil {
		return Outcome{}, err
	}
	if len(v) != 5 || v[0] < int64(CodeNew) || v[0] > int64(CodeLate) {
		return Outcome{}, fmt.Errorf("unexpected reply %v", v)
	}
	return Outcome{Code: Code(v[0]), Seconds: v[1], Up: v[2], Down: v[3], Sealed: v[4]}, nil
}
