package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/seedpay/seedpay/rewards"
)

// The public API: read-only JSON under /api/v1/public/, no token, rate
// limited per client. It shows what anyone may check: sealed epochs (roots,
// budgets, totals, lines by public id, Merkle proofs), payouts by public id
// (states, amounts, txids) and, when a PoolReader is given, pools. It never
// shows user ids, passkeys, receipt keys, signed transaction bytes or
// payout error reasons.

// PublicConfig turns on the public API and transparency page. The zero
// value is usable: default rate limits, no pools section, no trusted proxy.
type PublicConfig struct {
	// Pools serves the pools section; nil leaves it out.
	Pools PoolReader
	// Rate is each client's sustained requests per second (0: DefaultPublicRate).
	Rate float64
	// Burst is how many requests a client may make at once (0: DefaultPublicBurst).
	Burst int
	// MaxClients bounds the clients the limiter tracks (0: DefaultPublicMaxClients).
	MaxClients int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client; without them the connection's peer is the client.
	TrustedProxies []netip.Prefix
}

// PoolReader is the public view of the reward pools (content owners'
// funding and spending).
type PoolReader interface {
	// PublicPools lists every pool.
	PublicPools(ctx context.Context) ([]PublicPool, error)
	// PublicPool returns one pool, or an error wrapping ErrPoolNotFound.
	PublicPool(ctx context.Context, id string) (PublicPool, error)
}

// ErrPoolNotFound is what a PoolReader wraps for an unknown pool (the
// rewards pool store's own error).
var ErrPoolNotFound = rewards.ErrPoolNotFound

// PublicPool is one pool as the public sees it (what rewards.PoolView shows,
// without the owner and the refund address); amounts in token base units.
// Only ID, BudgetPerEpoch, Funded and Spent are always present (Balance is
// too, except for the global pool, which the operator funds).
type PublicPool struct {
	ID             string               `json:"id"`
	Name           string               `json:"name,omitempty"`
	State          string               `json:"state,omitempty"`  // open, closing, closed
	Global         bool                 `json:"global,omitempty"` // covers every torrent, funded by the operator
	Bounty         string               `json:"bounty,omitempty"` // the torrent a bounty pool funds
	DepositAddress string               `json:"deposit_address,omitempty"`
	BudgetPerEpoch string               `json:"budget_per_epoch"`
	Funded         string               `json:"funded"`                 // deposits received
	Spent          string               `json:"spent"`                  // credited to seeders
	Refunded       string               `json:"refunded,omitempty"`     // returned to the owner on close
	Balance        string               `json:"balance,omitempty"`      // left to spend (PoolView.Remaining); absent for the operator-funded global pool
	Unattributed   string               `json:"unattributed,omitempty"` // spent on no torrent's points (a torrent left the pool mid-epoch)
	Torrents       []string             `json:"torrents,omitempty"`     // on a pool's own view only
	TorrentCount   int                  `json:"torrent_count"`
	EpochSpend     []PublicEpochSpend   `json:"epoch_spend,omitempty"`   // newest first
	TorrentSpend   []PublicTorrentSpend `json:"torrent_spend,omitempty"` // all epochs, largest first; own view only
	Created        int64                `json:"created,omitempty"`
	Closed         int64                `json:"closed,omitempty"`
	Deposits       []PublicDeposit      `json:"deposits,omitempty"` // newest first
}

// PublicEpochSpend is what a pool paid out in one sealed epoch.
type PublicEpochSpend struct {
	Epoch  int64  `json:"epoch"`
	Amount string `json:"amount"`
}

// PublicTorrentSpend is what a pool paid, all epochs, to one torrent's seeders.
type PublicTorrentSpend struct {
	InfoHash string `json:"info_hash"`
	Amount   string `json:"amount"`
}

// PublicDeposit is one funding transfer into a pool.
type PublicDeposit struct {
	TxID   string `json:"txid"`
	Block  int64  `json:"block,omitempty"`
	From   string `json:"from,omitempty"`
	Amount string `json:"amount"`
	Time   int64  `json:"time,omitempty"` // Unix seconds the watcher saw it
}

// Public listing bounds and cache lifetimes.
const (
	defaultPublicEpochs = 10
	maxPublicEpochs     = 50
	defaultPublicLines  = 100
	maxPublicLines      = 500
	defaultPublicUser   = 20
	maxPublicUser       = 100
	// maxTxidLines: an epoch with more lines lists no txids in the epochs
	// list (its own page has them, page by page).
	maxTxidLines = 200
	// payoutLookups bounds the users whose payouts one epochs list reads.
	payoutLookups = 500

	cacheImmutable = "public, max-age=31536000, immutable"
	cacheShort     = "public, max-age=15"
)

type publicAPI struct {
	s      *Server
	ledger *rewards.Ledger
	pools  PoolReader
	idx    *publicIndex
	list   *poolListCache
}

// routePublic registers the public API and the page when d.Public is set.
func (s *Server) routePublic(m *http.ServeMux, d Deps) {
	if d.Public == nil {
		return
	}
	if d.Ledger == nil {
		s.log.Warn("public api: the rewards ledger is off, so the public api and page are not served")
		return
	}
	c := *d.Public
	if c.Rate <= 0 {
		c.Rate = DefaultPublicRate
	}
	if c.Burst <= 0 {
		c.Burst = DefaultPublicBurst
	}
	if c.MaxClients <= 0 {
		c.MaxClients = DefaultPublicMaxClients
	}
	p := &publicAPI{s: s, ledger: d.Ledger, pools: c.Pools, idx: newPublicIndex(s.store.Redis(), s.log.Named("public")),
		list: newPoolListCache()}
	lim := newRateLimiter(c.Rate, c.Burst, c.MaxClients)
	h := func(f http.HandlerFunc) http.Handler { return lim.limit(c.TrustedProxies, f) }

	m.Handle("GET /api/v1/public/info", h(p.info))
	m.Handle("GET /api/v1/public/epochs", h(p.epochs))
	m.Handle("GET /api/v1/public/epochs/{n}", h(p.epoch))
	m.Handle("GET /api/v1/public/epochs/{n}/proof/{pid}", h(p.proof))
	m.Handle("GET /api/v1/public/users/{pid}", h(p.user))
	if p.pools != nil {
		m.Handle("GET /api/v1/public/pools", h(p.listPools))
		m.Handle("GET /api/v1/public/pools/{id}", h(p.getPool))
	}
	m.Handle("/api/v1/public/", h(p.fallback))
	routePage(m, h)
}

// writePublic sends a public JSON body with the given Cache-Control.
func writePublic(w http.ResponseWriter, v any, cache string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", cache)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Access-Control-Allow-Origin", "*") // public data, no credentials
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

func (p *publicAPI) internalError(w http.ResponseWriter, r *http.Request, op string, err error, fields ...zap.Field) {
	p.s.internalError(w, r, "public "+op, err, fields...)
}

// fallback answers the public paths no route matched: 405 for a method
// other than GET and HEAD (the public API is read-only), else 404. It keeps
// the admin API's 401 for unknown /api/ paths away from public ones.
func (p *publicAPI) fallback(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed: the public api is read-only", r.Method))
		return
	}
	if p.pools == nil && (r.URL.Path == "/api/v1/public/pools" || strings.HasPrefix(r.URL.Path, "/api/v1/public/pools/")) {
		writeError(w, http.StatusNotFound, "pools are not published by this tracker")
		return
	}
	writeError(w, http.StatusNotFound, "not found")
}

type publicInfo struct {
	CurrentEpoch  int64  `json:"current_epoch"`
	FirstEpoch    *int64 `json:"first_epoch"`    // null before the first settlement run
	SealedThrough *int64 `json:"sealed_through"` // newest sealed epoch; null when none is
	Pools         bool   `json:"pools"`          // whether /pools is served
	PublicID      string `json:"public_id"`      // how a public id derives from a user id
}

func (p *publicAPI) info(w http.ResponseWriter, r *http.Request) {
	if err := p.idx.refresh(r.Context(), false); err != nil {
		p.internalError(w, r, "info", err)
		return
	}
	v := publicInfo{
		CurrentEpoch: p.ledger.Current(),
		Pools:        p.pools != nil,
		PublicID:     `first 16 hex digits of SHA-256("seedpay/public-id/v1" || 0x00 || user id)`,
	}
	first, last, ok := p.idx.sealedThrough()
	if p.idx.isStarted() {
		v.FirstEpoch = &first
	}
	if ok {
		v.SealedThrough = &last
	}
	writePublic(w, v, cacheShort)
}

// publicPoolLine is one pool's part of an epoch (rewards.PoolRecord, field
// by field, so a field added there is not published by accident).
type publicPoolLine struct {
	ID        string `json:"id"`
	Budget    string `json:"budget"`
	DustIn    string `json:"dust_in"`
	Available string `json:"available"`
	Points    string `json:"points"`
	Credited  string `json:"credited"`
	DustOut   string `json:"dust_out"`
	// Remaining is a content-owner pool's balance at seal time. The
	// record's per-torrent split of Credited is not published per epoch
	// (with one line earning from a bounty pool in an epoch, it would tell
	// which torrent that seeder seeded): only the pool's all-time totals
	// are (PublicPool.TorrentSpend).
	Remaining string `json:"remaining,omitempty"`
}

// publicEpoch is a sealed epoch's summary.
type publicEpoch struct {
	Epoch         int64            `json:"epoch"`
	Start         int64            `json:"start"`
	End           int64            `json:"end"`
	Root          string           `json:"root"`
	Lines         int              `json:"lines"`
	TotalPoints   string           `json:"total_points"`
	TotalCredited string           `json:"total_credited"`
	Pools         []publicPoolLine `json:"pools"`
	Payouts       *epochPayouts    `json:"payouts,omitempty"` // in the epochs list only
}

// epochPayouts summarizes how an epoch's credits were paid out.
type epochPayouts struct {
	// TxIDs of the payouts that paid this epoch's credits (sorted).
	TxIDs []string `json:"txids"`
	// Lines by payout state of their credit: confirmed, broadcast, signed,
	// pending, unpaid (still in the balance), unknown.
	States map[string]int `json:"states"`
	// Omitted says why txids are not listed here (too many lines).
	Omitted string `json:"omitted,omitempty"`
}

func summarize(e *sealedEpoch) publicEpoch {
	rec := e.rec
	v := publicEpoch{Epoch: rec.Epoch, Start: rec.Start, End: rec.End, Root: rec.Root, Lines: len(rec.Users),
		TotalPoints: rec.TotalPoints, TotalCredited: rec.TotalCredited, Pools: make([]publicPoolLine, len(rec.Pools))}
	for i, pr := range rec.Pools {
		v.Pools[i] = publicPoolLine{ID: pr.ID, Budget: pr.Budget, DustIn: pr.DustIn, Available: pr.Available,
			Points: pr.Points, Credited: pr.Credited, DustOut: pr.DustOut, Remaining: pr.Remaining}
	}
	return v
}

type publicEpochPage struct {
	Epochs []publicEpoch `json:"epochs"`
	Next   string        `json:"next,omitempty"` // query of the next (older) page
}

// epochs lists sealed epochs, newest first.
func (p *publicAPI) epochs(w http.ResponseWriter, r *http.Request) {
	if limit, before, ok := pageParams(w, r.URL.Query(), defaultPublicEpochs, maxPublicEpochs, true); ok {
		p.listEpochs(w, r, before, limit)
	}
}

func (p *publicAPI) listEpochs(w http.ResponseWriter, r *http.Request, before, limit int64) {
	ctx := r.Context()
	if err := p.idx.refresh(ctx, false); err != nil {
		p.internalError(w, r, "list epochs", err)
		return
	}
	page := publicEpochPage{Epochs: []publicEpoch{}}
	first, last, ok := p.idx.sealedThrough()
	if !ok {
		writePublic(w, page, cacheShort)
		return
	}
	top := last
	if before != 0 && before-1 < top {
		top = before - 1
	}
	var sealed []*sealedEpoch
	for n := top; n >= first && int64(len(sealed)) < limit; n-- {
		e, err := p.idx.epoch(ctx, n)
		if err != nil {
			p.internalError(w, r, "list epochs", err, zap.Int64("epoch", n))
			return
		}
		sealed = append(sealed, e)
	}
	views, err := p.payoutsOf(ctx, sealed)
	if err != nil {
		p.internalError(w, r, "list epochs", err)
		return
	}
	for i, e := range sealed {
		v := summarize(e)
		v.Payouts = views[i]
		page.Epochs = append(page.Epochs, v)
	}
	if n := len(sealed); int64(n) == limit && sealed[n-1].rec.Epoch > first {
		page.Next = "?before=" + strconv.FormatInt(sealed[n-1].rec.Epoch, 10) + "&limit=" + strconv.FormatInt(limit, 10)
	}
	writePublic(w, page, cacheShort)
}

// payoutsOf summarizes the payouts of each epoch's credits, reading the
// payouts of at most payoutLookups users in all.
func (p *publicAPI) payoutsOf(ctx context.Context, sealed []*sealedEpoch) ([]*epochPayouts, error) {
	out := make([]*epochPayouts, len(sealed))
	users := map[string]*userPayouts{}
	for i, e := range sealed {
		if len(e.rec.Users) > maxTxidLines {
			out[i] = &epochPayouts{TxIDs: []string{}, Omitted: fmt.Sprintf("%d lines; each line's payout is on the epoch's page", len(e.rec.Users))}
			continue
		}
		added := 0
		for _, u := range e.rec.Users {
			if _, ok := users[u.User]; !ok && u.Amount != "0" {
				added++
			}
		}
		if len(users)+added > payoutLookups {
			out[i] = &epochPayouts{TxIDs: []string{}, Omitted: "too many users on this page; each line's payout is on the epoch's page"}
			continue
		}
		for _, u := range e.rec.Users {
			if u.Amount != "0" {
				users[u.User] = nil
			}
		}
		out[i] = &epochPayouts{}
	}
	if err := p.loadPayouts(ctx, users); err != nil {
		return nil, err
	}
	for i, e := range sealed {
		if out[i].Omitted != "" {
			continue
		}
		sum := &epochPayouts{TxIDs: []string{}, States: map[string]int{}}
		seen := map[string]bool{}
		for _, u := range e.rec.Users {
			lp := linePayoutOf(e.rec.Epoch, u.Amount, users[u.User])
			if lp == nil {
				continue
			}
			sum.States[lp.State]++
			if lp.TxID != "" && !seen[lp.TxID] {
				seen[lp.TxID] = true
				sum.TxIDs = append(sum.TxIDs, lp.TxID)
			}
		}
		slices.Sort(sum.TxIDs)
		out[i] = sum
	}
	return out, nil
}

// loadPayouts fills users (keys set, values nil) with their payout views,
// eight lookups at a time.
func (p *publicAPI) loadPayouts(ctx context.Context, users map[string]*userPayouts) error {
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		firstErr error
	)
	sem := make(chan struct{}, 8)
	keys := make([]string, 0, len(users))
	for u := range users {
		keys = append(keys, u)
	}
	for _, u := range keys { // not the map itself: the goroutines write to it
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			v, err := p.idx.userPayouts(ctx, u)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("payouts of a user: %w", err)
				}
				return
			}
			users[u] = v
		}()
	}
	wg.Wait()
	return firstErr
}

// linePayout is how one line's credit was paid.
type linePayout struct {
	// State: the paying payout's state (pending, signed, broadcast,
	// confirmed), "unpaid" while the credit waits in the balance (for the
	// minimum payout or a payout address), "unknown" when the user has more
	// payouts than the index maps.
	State string `json:"state"`
	TxID  string `json:"txid,omitempty"`
}

// linePayoutOf is nil for a zero credit.
func linePayoutOf(epoch int64, amount string, up *userPayouts) *linePayout {
	if amount == "0" || amount == "" {
		return nil
	}
	if up == nil || up.truncated {
		return &linePayout{State: "unknown"}
	}
	k, ok := up.alloc[epoch]
	if !ok {
		return &linePayout{State: "unpaid"}
	}
	po := &up.payouts[k]
	return &linePayout{State: po.State, TxID: currentTxID(po)}
}

// currentTxID is the payout's live (or confirmed) transaction, "" if none.
func currentTxID(po *rewards.Payout) string {
	if n := len(po.Txs); n > 0 && !po.Txs[n-1].Dead {
		return po.Txs[n-1].TxID
	}
	return ""
}

// publicLine is one user's line of a sealed epoch, by public id. It has
// no points per pool: a bounty pool covers one torrent, so a line's points
// in it would say which torrent the seeder seeded (the leaf does not
// commit to points, so nothing is lost for the proof).
type publicLine struct {
	PID         string      `json:"pid"`
	Address     string      `json:"address"`
	SeedSeconds int64       `json:"seed_seconds"`
	Amount      string      `json:"amount"`
	Leaf        string      `json:"leaf"`
	Payout      *linePayout `json:"payout,omitempty"`
}

type publicEpochDetail struct {
	publicEpoch
	Offset    int          `json:"offset"`
	UserLines []publicLine `json:"user_lines"` // by public id
	Next      string       `json:"next,omitempty"`
}

// epochParam parses {n}; sealedParam loads that sealed epoch or answers 404.
func (p *publicAPI) sealedParam(w http.ResponseWriter, r *http.Request) (*sealedEpoch, bool) {
	n, aerr := intParam("epoch", r.PathValue("n"), 0, 0, 1<<40)
	if aerr != nil {
		writeError(w, aerr.status, aerr.msg)
		return nil, false
	}
	e, err := p.idx.epoch(r.Context(), n)
	switch {
	case errors.Is(err, rewards.ErrNotSealed):
		msg := "epoch " + strconv.FormatInt(n, 10) + " is not sealed yet"
		_ = p.idx.refresh(r.Context(), false) // only to name the first epoch; a failure just omits it
		if first, _, _ := p.idx.sealedThrough(); p.idx.isStarted() && n < first {
			msg = "epoch " + strconv.FormatInt(n, 10) + " is before this ledger's first epoch " + strconv.FormatInt(first, 10)
		} else if n > p.ledger.Current() {
			msg = "epoch " + strconv.FormatInt(n, 10) + " has not started"
		}
		writeError(w, http.StatusNotFound, msg)
		return nil, false
	case err != nil:
		p.internalError(w, r, "epoch", err, zap.Int64("epoch", n))
		return nil, false
	}
	return e, true
}

func (p *publicAPI) epoch(w http.ResponseWriter, r *http.Request) {
	limit, offset, ok := pageParams(w, r.URL.Query(), defaultPublicLines, maxPublicLines, false)
	if !ok {
		return
	}
	e, ok := p.sealedParam(w, r)
	if !ok {
		return
	}
	total := int64(len(e.order))
	if offset > total {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("offset: epoch %d has %d lines, got %d", e.rec.Epoch, total, offset))
		return
	}
	end := min(offset+limit, total)
	idxs := e.order[offset:end]
	users := make(map[string]*userPayouts, len(idxs))
	for _, i := range idxs {
		if u := e.rec.Users[i]; u.Amount != "0" {
			users[u.User] = nil
		}
	}
	if err := p.loadPayouts(r.Context(), users); err != nil {
		p.internalError(w, r, "epoch", err, zap.Int64("epoch", e.rec.Epoch))
		return
	}
	v := publicEpochDetail{publicEpoch: summarize(e), Offset: int(offset), UserLines: make([]publicLine, 0, len(idxs))}
	final := true
	for _, i := range idxs {
		u := e.rec.Users[i]
		line := publicLine{PID: e.pids[i], Address: u.Address, SeedSeconds: u.SeedSeconds,
			Amount: u.Amount, Leaf: fmt.Sprintf("%x", e.leaves[i]), Payout: linePayoutOf(e.rec.Epoch, u.Amount, users[u.User])}
		if line.Payout != nil && line.Payout.State != rewards.PayoutConfirmed {
			final = false
		}
		v.UserLines = append(v.UserLines, line)
	}
	if end < total {
		v.Next = "?offset=" + strconv.FormatInt(end, 10) + "&limit=" + strconv.FormatInt(limit, 10)
	}
	cache := cacheShort
	if final { // the record never changes, and every credit's payout is settled
		cache = cacheImmutable
	}
	writePublic(w, v, cache)
}

// publicProof is a Merkle proof by public id: the leaf hash, the sibling
// path and the root. The user id it commits to is not shown; the page
// checks the path from the leaf, and a visitor who knows the user id can
// recompute the leaf from (epoch, user id, address, amount).
type publicProof struct {
	Epoch   int64    `json:"epoch"`
	PID     string   `json:"pid"`
	Address string   `json:"address"`
	Amount  string   `json:"amount"`
	Leaf    string   `json:"leaf"`
	Path    []string `json:"path"`
	Root    string   `json:"root"`
}

func (p *publicAPI) proof(w http.ResponseWriter, r *http.Request) {
	pid := r.PathValue("pid")
	if !validPublicID(pid) {
		writeError(w, http.StatusBadRequest, "pid: want 16 lowercase hex digits, got "+quoteInput(pid))
		return
	}
	e, ok := p.sealedParam(w, r)
	if !ok {
		return
	}
	i, ok := e.byPID[pid]
	if !ok {
		writeError(w, http.StatusNotFound, "no line of "+pid+" in epoch "+strconv.FormatInt(e.rec.Epoch, 10))
		return
	}
	path, ok := e.tree.Proof(e.leaves[i])
	if !ok {
		p.internalError(w, r, "proof", errors.New("leaf not in its own tree"), zap.Int64("epoch", e.rec.Epoch))
		return
	}
	u := e.rec.Users[i]
	v := publicProof{Epoch: e.rec.Epoch, PID: pid, Address: u.Address, Amount: u.Amount,
		Leaf: fmt.Sprintf("%x", e.leaves[i]), Path: make([]string, len(path)), Root: e.rec.Root}
	for j, h := range path {
		v.Path[j] = fmt.Sprintf("%x", h)
	}
	writePublic(w, v, cacheImmutable)
}

// publicUserEpoch is one of a public id's lines (no points per pool, as
// publicLine).
type publicUserEpoch struct {
	Epoch       int64       `json:"epoch"`
	Root        string      `json:"root"`
	Address     string      `json:"address"`
	SeedSeconds int64       `json:"seed_seconds"`
	Amount      string      `json:"amount"`
	Leaf        string      `json:"leaf"`
	Payout      *linePayout `json:"payout,omitempty"`
}

// publicPayout is a payout without its user id, signed bytes or reason.
type publicPayout struct {
	State     string     `json:"state"`
	Amount    string     `json:"amount"`
	Address   string     `json:"address"`
	Created   int64      `json:"created"`
	Confirmed int64      `json:"confirmed,omitempty"`
	TxID      string     `json:"txid,omitempty"` // the live or confirmed transaction
	Txs       []publicTx `json:"txs"`            // every transaction signed for it
}

type publicTx struct {
	TxID string `json:"txid"`
	Dead bool   `json:"dead,omitempty"` // expired unseen; never on chain
}

type publicUser struct {
	PID     string            `json:"pid"`
	Balance string            `json:"balance"` // credited, not paid out yet
	Credits []publicUserEpoch `json:"epochs"`  // newest first
	Next    string            `json:"next,omitempty"`
	Payouts []publicPayout    `json:"payouts"` // newest first
}

func (p *publicAPI) user(w http.ResponseWriter, r *http.Request) {
	pid := r.PathValue("pid")
	if !validPublicID(pid) {
		writeError(w, http.StatusBadRequest, "pid: want 16 lowercase hex digits, got "+quoteInput(pid))
		return
	}
	limit, before, ok := pageParams(w, r.URL.Query(), defaultPublicUser, maxPublicUser, true)
	if !ok {
		return
	}
	ctx := r.Context()
	if err := p.idx.refresh(ctx, false); err != nil {
		p.internalError(w, r, "user", err)
		return
	}
	user, epochs, ok := p.idx.lookup(pid)
	if !ok { // maybe sealed a moment ago
		if err := p.idx.refresh(ctx, true); err != nil {
			p.internalError(w, r, "user", err)
			return
		}
		if user, epochs, ok = p.idx.lookup(pid); !ok {
			writeError(w, http.StatusNotFound, "no sealed epoch has a line of "+pid)
			return
		}
	}
	up, err := p.idx.userPayouts(ctx, user)
	if err != nil {
		p.internalError(w, r, "user", err, zap.String("pid", pid))
		return
	}
	v := publicUser{PID: pid, Balance: up.balance, Credits: []publicUserEpoch{}, Payouts: []publicPayout{}}
	for _, n := range epochs {
		if before != 0 && n >= before {
			continue
		}
		if int64(len(v.Credits)) == limit {
			v.Next = "?before=" + strconv.FormatInt(v.Credits[len(v.Credits)-1].Epoch, 10) + "&limit=" + strconv.FormatInt(limit, 10)
			break
		}
		e, err := p.idx.epoch(ctx, n)
		if err != nil {
			p.internalError(w, r, "user", err, zap.String("pid", pid), zap.Int64("epoch", n))
			return
		}
		i, ok := e.byPID[pid]
		if !ok { // the index named this epoch for pid: they disagree
			p.internalError(w, r, "user", fmt.Errorf("epoch %d has no line for public id %s", n, pid), zap.String("pid", pid))
			return
		}
		u := e.rec.Users[i]
		line := publicUserEpoch{Epoch: n, Root: e.rec.Root, Address: u.Address, SeedSeconds: u.SeedSeconds,
			Amount: u.Amount, Leaf: fmt.Sprintf("%x", e.leaves[i]), Payout: linePayoutOf(n, u.Amount, up)}
		v.Credits = append(v.Credits, line)
	}
	for k := len(up.payouts) - 1; k >= 0; k-- {
		po := &up.payouts[k]
		pp := publicPayout{State: po.State, Amount: po.Amount, Address: po.Address, Created: po.Created,
			Confirmed: po.Confirmed, TxID: currentTxID(po), Txs: make([]publicTx, len(po.Txs))}
		for j, tx := range po.Txs {
			pp.Txs[j] = publicTx{TxID: tx.TxID, Dead: tx.Dead}
		}
		v.Payouts = append(v.Payouts, pp)
	}
	writePublic(w, v, cacheShort)
}

type publicPoolPage struct {
	Pools []PublicPool `json:"pools"`
	Total int          `json:"total"`          // pools in the whole list
	Next  string       `json:"next,omitempty"` // query of the next page
}

// listPools pages through the pools list, which is built at most once per
// poolListTTL (one build at a time) and served from memory in between.
func (p *publicAPI) listPools(w http.ResponseWriter, r *http.Request) {
	limit, offset, ok := pageParams(w, r.URL.Query(), defaultPublicPools, maxPublicPools, false)
	if !ok {
		return
	}
	list, err := p.list.get(r.Context(), p.pools.PublicPools)
	if err != nil {
		p.internalError(w, r, "pools", err)
		return
	}
	total := int64(len(list))
	start, end := min(offset, total), min(offset+limit, total)
	page := publicPoolPage{Pools: list[start:end], Total: len(list)}
	if end < total {
		page.Next = "?offset=" + strconv.FormatInt(end, 10) + "&limit=" + strconv.FormatInt(limit, 10)
	}
	writePublic(w, page, cacheShort)
}

func (p *publicAPI) getPool(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !rewards.ValidPoolID(id) {
		writeError(w, http.StatusBadRequest, `pool id: want "global" or "p" and digits, got `+quoteInput(id))
		return
	}
	pool, err := p.pools.PublicPool(r.Context(), id)
	switch {
	case errors.Is(err, ErrPoolNotFound):
		writeError(w, http.StatusNotFound, "pool "+id+" not found")
	case err != nil:
		p.internalError(w, r, "pool", err, zap.String("pool", id))
	default:
		writePublic(w, pool, cacheShort)
	}
}

// PublicHandler is the public API and page alone, for a listener of their
// own, so that the admin port need not face the internet. It needs
// d.Store, d.Ledger and d.Public (d.Log may be nil); every other path is a
// JSON 404, and every method but GET and HEAD a 405.
func PublicHandler(d Deps) (http.Handler, error) {
	if d.Store == nil || d.Ledger == nil || d.Public == nil {
		return nil, fmt.Errorf("api: the public handler needs Deps.Store, Deps.Ledger and Deps.Public: %w", ErrConfig)
	}
	log := d.Log
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{store: d.Store, ledger: d.Ledger, log: log.Named("api"), mux: http.NewServeMux()}
	s.routePublic(s.mux, d)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed: the public api is read-only", r.Method))
			return
		}
		writeError(w, http.StatusNotFound, "not found")
	})
	s.handler = s.recoverPanics(s.mux)
	return s.handler, nil
}
