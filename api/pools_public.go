package api

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/seedpay/seedpay/rewards"
)

// Public pool listing bounds.
const (
	publicListDeposits = 10  // newest deposits per pool in the list
	publicListEpochs   = 10  // newest epoch spends per pool in the list
	publicPoolDeposits = 100 // on a pool's own page
	defaultPublicPools = 100
	maxPublicPools     = 500
	// poolListTTL is how long a built pools list is served before the
	// next request rebuilds it.
	poolListTTL = 15 * time.Second
	// poolListBuildTimeout bounds one build (it outlives the request that
	// started it: other requests wait for the same build).
	poolListBuildTimeout = 20 * time.Second
)

// PublicPoolReader is the public view of the pool store: every pool with
// its funding (deposits) and spending (per epoch, per torrent), without the
// owner or the refund address. The list reads every pool in pipelines
// (rewards.Pools.Summaries) and leaves out the torrents and the per-torrent
// spend, which a pool's own view has.
func PublicPoolReader(pools *rewards.Pools) PoolReader { return publicPools{pools} }

type publicPools struct{ p *rewards.Pools }

func (r publicPools) PublicPools(ctx context.Context) ([]PublicPool, error) {
	list, deps, err := r.p.Summaries(ctx, publicListEpochs, publicListDeposits)
	if err != nil {
		return nil, err
	}
	out := make([]PublicPool, 0, len(list))
	for i, v := range list {
		pp := publicPoolOf(v)
		pp.Torrents, pp.TorrentSpend, pp.Unattributed = nil, nil, ""
		pp.Deposits = publicDeposits(deps[i])
		out = append(out, pp)
	}
	return out, nil
}

func (r publicPools) PublicPool(ctx context.Context, id string) (PublicPool, error) {
	v, err := r.p.GetPublic(ctx, id)
	if err != nil {
		return PublicPool{}, err // wraps rewards.ErrPoolNotFound (== ErrPoolNotFound)
	}
	pp := publicPoolOf(v)
	if v.Global { // the operator funds it; it has no deposit address
		return pp, nil
	}
	ds, err := r.p.Deposits(ctx, v.ID, publicPoolDeposits)
	if err != nil {
		return PublicPool{}, fmt.Errorf("deposits of pool %s: %w", v.ID, err)
	}
	pp.Deposits = publicDeposits(ds)
	return pp, nil
}

func publicPoolOf(v rewards.PoolView) PublicPool {
	pp := PublicPool{ID: v.ID, Name: v.Name, State: v.State, Global: v.Global, Bounty: v.Bounty,
		DepositAddress: v.DepositAddress, BudgetPerEpoch: v.BudgetPerEpoch, Torrents: v.Torrents, TorrentCount: v.TorrentCount,
		Funded: v.Funded, Spent: v.Spent, Refunded: v.Refunded, Balance: v.Remaining, Unattributed: v.Unattributed,
		Created: v.Created, Closed: v.Closed}
	for _, e := range v.EpochSpend {
		pp.EpochSpend = append(pp.EpochSpend, PublicEpochSpend{Epoch: e.Epoch, Amount: e.Amount})
	}
	for _, t := range v.TorrentSpend {
		pp.TorrentSpend = append(pp.TorrentSpend, PublicTorrentSpend{InfoHash: t.InfoHash, Amount: t.Amount})
	}
	return pp
}

func publicDeposits(ds []rewards.Deposit) []PublicDeposit {
	var out []PublicDeposit
	for _, d := range ds {
		out = append(out, PublicDeposit{TxID: d.TxID, Block: d.Block, From: d.From, Amount: d.Amount, Time: d.Seen})
	}
	return out
}

// poolListCache keeps the built public pools list for poolListTTL and
// builds it once at a time: requests arriving during a build wait for that
// build instead of starting their own (the list costs Redis work in
// proportion to the pools, so it must not be per request).
type poolListCache struct {
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	list []PublicPool
	at   time.Time
	call *poolListCall // the build in flight, if any
}

type poolListCall struct {
	done chan struct{}
	list []PublicPool
	err  error
}

func newPoolListCache() *poolListCache { return &poolListCache{ttl: poolListTTL, now: time.Now} }

// safeBuild runs build outside any handler's panic recovery: a panic
// becomes the build's error instead of ending the process.
func safeBuild(ctx context.Context, build func(context.Context) ([]PublicPool, error)) (l []PublicPool, err error) {
	defer func() {
		if p := recover(); p != nil {
			l, err = nil, fmt.Errorf("pool list build panicked: %v", p)
		}
	}()
	return build(ctx)
}

// get returns the cached list, or waits for one build (started here if
// none is running). The build runs detached from ctx, so a client that
// gives up does not fail the others waiting for it.
func (c *poolListCache) get(ctx context.Context, build func(context.Context) ([]PublicPool, error)) ([]PublicPool, error) {
	c.mu.Lock()
	if c.list != nil && c.now().Sub(c.at) < c.ttl {
		l := c.list
		c.mu.Unlock()
		return l, nil
	}
	call := c.call
	if call == nil {
		call = &poolListCall{done: make(chan struct{})}
		c.call = call
		go func() {
			bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), poolListBuildTimeout)
			l, err := safeBuild(bctx, build)
			cancel()
			if err == nil && l == nil {
				l = []PublicPool{}
			}
			call.list, call.err = l, err
			c.mu.Lock()
			if err == nil {
				c.list, c.at = l, c.now()
			}
			c.call = nil
			c.mu.Unlock()
			close(call.done)
		}()
	}
	c.mu.Unlock()
	select {
	case <-call.done:
		return call.list, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
