package api

import (
	"cmp"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/rewards"
)

// PublicIDPrefix is hashed before a user id to make its public id.
const PublicIDPrefix = "seedpay/public-id/v1\x00"

// PublicID is the opaque, stable id the public API and page show instead of
// a user id (user ids may be a site's private identifiers): the first 16 hex
// digits (8 bytes) of SHA-256("seedpay/public-id/v1" || 0x00 || user id),
// lowercase. Anyone who knows a user id can compute its public id (the page
// does so in the browser); the reverse takes guessing the id. It hides ids,
// it does not make them secret: a Merkle leaf commits to the user id too, so
// a guessed id can be confirmed against a published leaf either way.
func PublicID(user string) string {
	sum := sha256.Sum256([]byte(PublicIDPrefix + user))
	return hex.EncodeToString(sum[:8])
}

// validPublicID accepts exactly 16 lowercase hex digits.
func validPublicID(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// sealedEpoch is a sealed record with what the public routes derive from it;
// records never change, so neither does this.
type sealedEpoch struct {
	rec    *rewards.Record
	pids   []string   // public id of rec.Users[i]
	leaves [][32]byte // leaf of rec.Users[i]
	byPID  map[string]int
	order  []int // indices of rec.Users by public id
	tree   *rewards.Tree
}

func newSealedEpoch(rec *rewards.Record) (*sealedEpoch, error) {
	e := &sealedEpoch{
		rec:    rec,
		pids:   make([]string, len(rec.Users)),
		leaves: make([][32]byte, len(rec.Users)),
		byPID:  make(map[string]int, len(rec.Users)),
		order:  make([]int, len(rec.Users)),
	}
	for i, u := range rec.Users {
		a, ok := new(big.Int).SetString(u.Amount, 10)
		if !ok || a.Sign() < 0 {
			return nil, fmt.Errorf("record %d: amount %q", rec.Epoch, u.Amount)
		}
		e.leaves[i] = rewards.Leaf(rec.Epoch, u.User, u.Address, a)
		e.pids[i] = PublicID(u.User)
		if _, dup := e.byPID[e.pids[i]]; !dup { // first wins, as in publicIndex.add
			e.byPID[e.pids[i]] = i
		}
		e.order[i] = i
	}
	slices.SortFunc(e.order, func(a, b int) int { return cmp.Compare(e.pids[a], e.pids[b]) })
	e.tree = rewards.NewTree(e.leaves)
	root := e.tree.Root()
	if got := hex.EncodeToString(root[:]); got != rec.Root {
		return nil, fmt.Errorf("record %d: its lines hash to root %s, the record says %s", rec.Epoch, got, rec.Root)
	}
	return e, nil
}

// lru is a map bounded by the total weight of its values; the least recently
// used values go first. Each value remembers when it was stored.
type lru[K comparable, V any] struct {
	mu     sync.Mutex
	max    int
	weight int
	items  map[K]*list.Element
	ll     list.List
}

type lruItem[K comparable, V any] struct {
	key K
	val V
	w   int
	at  time.Time
}

func newLRU[K comparable, V any](maxWeight int) *lru[K, V] {
	return &lru[K, V]{max: maxWeight, items: make(map[K]*list.Element)}
}

func (c *lru[K, V]) get(k K) (V, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		var zero V
		return zero, time.Time{}, false
	}
	c.ll.MoveToFront(el)
	it := el.Value.(*lruItem[K, V])
	return it.val, it.at, true
}

func (c *lru[K, V]) put(k K, v V, w int, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		it := el.Value.(*lruItem[K, V])
		c.weight += w - it.w
		it.val, it.w, it.at = v, w, now
		c.ll.MoveToFront(el)
	} else {
		c.items[k] = c.ll.PushFront(&lruItem[K, V]{key: k, val: v, w: w, at: now})
		c.weight += w
	}
	for c.weight > c.max && c.ll.Len() > 1 {
		el := c.ll.Back()
		it := el.Value.(*lruItem[K, V])
		c.ll.Remove(el)
		delete(c.items, it.key)
		c.weight -= it.w
	}
}

func (c *lru[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// Bounds of the public index's caches.
const (
	maxCachedLines      = 500_000          // user lines of the sealed records kept decoded
	maxCachedPayoutUser = 20_000           // users whose payouts are cached
	payoutCacheTTL      = 10 * time.Second // how stale a payout view may be
	maxUserPayouts      = 1000             // payouts read per user; older ones are not mapped to epochs
	indexRefreshEvery   = time.Second      // at most one index catch-up per interval
	indexRefreshBudget  = 2 * time.Second  // one catch-up stops after this; the next continues
)

// pidEntry is what the index knows of one public id.
type pidEntry struct {
	user   string
	epochs []int64 // ascending
}

// publicIndex serves the public routes' reads: the public-id index over the
// sealed records, built incrementally in memory (records are immutable and
// sealed strictly in order, so the index only ever appends), a cache of
// decoded records, and a short-lived cache of each user's payouts.
type publicIndex struct {
	rdb redis.UniversalClient
	log *zap.Logger
	now func() time.Time

	refreshMu sync.Mutex // one catch-up at a time; others serve what is indexed

	mu          sync.RWMutex // guards the fields below
	first       int64        // first epoch of the ledger; valid when started
	started     bool
	next        int64 // every sealed epoch below next is indexed
	pids        map[string]*pidEntry
	collisions  int
	lastRefresh time.Time

	records *lru[int64, *sealedEpoch]
	payouts *lru[string, *userPayouts]
}

func newPublicIndex(rdb redis.UniversalClient, log *zap.Logger) *publicIndex {
	return &publicIndex{
		rdb: rdb, log: log, now: time.Now,
		pids:    make(map[string]*pidEntry),
		records: newLRU[int64, *sealedEpoch](maxCachedLines),
		payouts: newLRU[string, *userPayouts](maxCachedPayoutUser),
	}
}

// epoch returns sealed epoch n, from the cache or Redis; an unsealed epoch
// is rewards.ErrNotSealed.
func (x *publicIndex) epoch(ctx context.Context, n int64) (*sealedEpoch, error) {
	if e, _, ok := x.records.get(n); ok {
		return e, nil
	}
	rec, err := rewards.LoadRecord(ctx, x.rdb, n)
	if err != nil {
		return nil, err
	}
	e, err := newSealedEpoch(rec)
	if err != nil {
		return nil, err
	}
	x.records.put(n, e, len(rec.Users)+1, x.now())
	return e, nil
}

// refresh indexes newly sealed epochs, at most once per indexRefreshEvery
// unless forced, and for at most indexRefreshBudget. A request that finds
// another catch-up running does not wait for it, unless it is forced or the
// index has not started (then it would answer from nothing). When nothing
// is new, a refresh costs one GET.
func (x *publicIndex) refresh(ctx context.Context, force bool) error {
	if force || !x.isStarted() {
		x.refreshMu.Lock()
	} else if !x.refreshMu.TryLock() {
		return nil
	}
	defer x.refreshMu.Unlock()
	x.mu.RLock()
	started, next, last := x.started, x.next, x.lastRefresh
	x.mu.RUnlock()
	now := x.now()
	if !force && !last.IsZero() && now.Sub(last) < indexRefreshEvery && !now.Before(last) {
		return nil
	}
	if !started {
		first, err := x.rdb.Get(ctx, rewards.KeyFirstEpoch).Int64()
		if errors.Is(err, redis.Nil) {
			x.mu.Lock()
			x.lastRefresh = now
			x.mu.Unlock()
			return nil // no settler has run: nothing is sealed
		}
		if err != nil {
			return fmt.Errorf("public index: first epoch: %w", err)
		}
		x.mu.Lock()
		x.first, x.next, x.started = first, first, true
		x.mu.Unlock()
		next = first
	}
	deadline := time.Now().Add(indexRefreshBudget)
	for time.Now().Before(deadline) {
		rec, err := rewards.LoadRecord(ctx, x.rdb, next)
		if errors.Is(err, rewards.ErrNotSealed) {
			break
		}
		if err != nil {
			return fmt.Errorf("public index: %w", err)
		}
		x.add(rec)
		next++
	}
	x.mu.Lock()
	x.lastRefresh = now
	x.mu.Unlock()
	return nil
}

// add indexes one record; records come in epoch order.
func (x *publicIndex) add(rec *rewards.Record) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if rec.Epoch != x.next {
		return
	}
	for _, u := range rec.Users {
		pid := PublicID(u.User)
		e := x.pids[pid]
		if e == nil {
			e = &pidEntry{user: u.User}
			x.pids[pid] = e
		} else if e.user != u.User {
			// 64-bit ids collide after ~4e9 users; keep the first owner.
			x.collisions++
			x.log.Error("public id collision: the second user's lines are not shown by public id",
				zap.String("pid", pid), zap.Int64("epoch", rec.Epoch))
			continue
		}
		e.epochs = append(e.epochs, rec.Epoch)
	}
	x.next = rec.Epoch + 1
}

// sealedThrough is the newest indexed sealed epoch; ok is false when none is.
func (x *publicIndex) sealedThrough() (first, last int64, ok bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if !x.started || x.next <= x.first {
		return x.first, 0, false
	}
	return x.first, x.next - 1, true
}

// isStarted reports whether the index knows the ledger's first epoch.
func (x *publicIndex) isStarted() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.started
}

// lookup returns a public id's user and its epochs (a copy), newest first.
func (x *publicIndex) lookup(pid string) (string, []int64, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.pids[pid]
	if !ok {
		return "", nil, false
	}
	epochs := slices.Clone(e.epochs)
	slices.Reverse(epochs)
	return e.user, epochs, true
}

// userPayouts is one user's credits and payouts, and which payout paid
// which epoch's credit.
type userPayouts struct {
	balance   string
	payouts   []rewards.Payout // oldest first
	alloc     map[int64]int    // epoch -> index in payouts of the payout that paid its credit
	credits   map[int64]string // epoch -> amount credited
	truncated bool             // more than maxUserPayouts payouts: epochs are not mapped
}

// userPayouts returns the user's payout view, at most payoutCacheTTL old.
func (x *publicIndex) userPayouts(ctx context.Context, user string) (*userPayouts, error) {
	if v, at, ok := x.payouts.get(user); ok && x.now().Sub(at) < payoutCacheTTL {
		return v, nil
	}
	credits, err := x.rdb.HGetAll(ctx, rewards.KeyCredits(user)).Result()
	if err != nil {
		return nil, fmt.Errorf("credits: %w", err)
	}
	bal, err := x.rdb.Get(ctx, rewards.KeyBalance(user)).Result()
	if errors.Is(err, redis.Nil) {
		bal, err = "0", nil
	}
	if err != nil {
		return nil, fmt.Errorf("balance: %w", err)
	}
	list, err := rewards.Payouts(ctx, x.rdb, "", user, maxUserPayouts)
	if err != nil {
		return nil, fmt.Errorf("payouts: %w", err)
	}
	slices.Reverse(list)
	v := &userPayouts{balance: bal, payouts: list, credits: make(map[int64]string, len(credits)), truncated: len(list) >= maxUserPayouts}
	for f, a := range credits {
		if n, err := strconv.ParseInt(f, 10, 64); err == nil {
			v.credits[n] = a
		}
	}
	if !v.truncated {
		v.alloc = allocatePayouts(v.credits, list)
	}
	x.payouts.put(user, v, 1, x.now())
	return v, nil
}

// allocatePayouts maps each credited epoch to the payout that paid it. A
// payout debits the whole balance, and credits arrive in epoch order, so
// cumulative payouts (failed ones excluded: their amount went back to the
// balance) cover cumulative credits in order: epoch e's credit is paid by
// the first payout at which the payouts' running total reaches the credits'
// running total through e. Credits not yet reached are unpaid.
func allocatePayouts(credits map[int64]string, payouts []rewards.Payout) map[int64]int {
	epochs := make([]int64, 0, len(credits))
	for n := range credits {
		epochs = append(epochs, n)
	}
	slices.Sort(epochs)
	alloc := make(map[int64]int)
	credited, paid := new(big.Int), new(big.Int)
	j := 0
	for _, n := range epochs {
		a, ok := new(big.Int).SetString(credits[n], 10)
		if !ok || a.Sign() <= 0 {
			continue
		}
		credited.Add(credited, a)
		for paid.Cmp(credited) < 0 && j < len(payouts) {
			if payouts[j].State != rewards.PayoutFailed {
				if p, ok := new(big.Int).SetString(payouts[j].Amount, 10); ok {
					paid.Add(paid, p)
				}
			}
			j++
		}
		if paid.Cmp(credited) < 0 {
			break // this credit and every later one wait in the balance
		}
		// the payout that brought the total past this credit: the last
		// non-failed one taken so far
		k := j - 1
		for k >= 0 && payouts[k].State == rewards.PayoutFailed {
			k--
		}
		if k >= 0 {
			alloc[n] = k
		}
	}
	return alloc
}
