package api

import (
	"context"
	"fmt"

	"github.com/seedpay/seedpay/rewards"
)

// Deposits listed per pool on the public page.
const (
	publicListDeposits = 10
	publicPoolDeposits = 100
)

// PublicPoolReader is the public view of the pool store: every pool with
// its funding (deposits) and spending (per epoch, per torrent), without the
// owner or the refund address.
func PublicPoolReader(pools *rewards.Pools) PoolReader { return publicPools{pools} }

type publicPools struct{ p *rewards.Pools }

func (r publicPools) PublicPools(ctx context.Context) ([]PublicPool, error) {
	list, err := r.p.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PublicPool, 0, len(list))
	for _, v := range list {
		pp, err := r.public(ctx, v, publicListDeposits)
		if err != nil {
			return nil, err
		}
		out = append(out, pp)
	}
	return out, nil
}

func (r publicPools) PublicPool(ctx context.Context, id string) (PublicPool, error) {
	v, err := r.p.Get(ctx, id)
	if err != nil {
		return PublicPool{}, err // wraps rewards.ErrPoolNotFound (== ErrPoolNotFound)
	}
	return r.public(ctx, v, publicPoolDeposits)
}

func (r publicPools) public(ctx context.Context, v rewards.PoolView, deposits int64) (PublicPool, error) {
	pp := PublicPool{ID: v.ID, Name: v.Name, State: v.State, Global: v.Global, Bounty: v.Bounty,
		DepositAddress: v.DepositAddress, BudgetPerEpoch: v.BudgetPerEpoch, Torrents: v.Torrents,
		Funded: v.Funded, Spent: v.Spent, Refunded: v.Refunded, Balance: v.Remaining,
		Created: v.Created, Closed: v.Closed}
	for _, e := range v.EpochSpend {
		pp.EpochSpend = append(pp.EpochSpend, PublicEpochSpend{Epoch: e.Epoch, Amount: e.Amount})
	}
	for _, t := range v.TorrentSpend {
		pp.TorrentSpend = append(pp.TorrentSpend, PublicTorrentSpend{InfoHash: t.InfoHash, Amount: t.Amount})
	}
	if v.Global { // the operator funds it; it has no deposit address
		return pp, nil
	}
	ds, err := r.p.Deposits(ctx, v.ID, deposits)
	if err != nil {
		return PublicPool{}, fmt.Errorf("deposits of pool %s: %w", v.ID, err)
	}
	for _, d := range ds {
		pp.Deposits = append(pp.Deposits, PublicDeposit{TxID: d.TxID, Block: d.Block, From: d.From, Amount: d.Amount, Time: d.Seen})
	}
	return pp, nil
}
