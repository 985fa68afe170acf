package rewards

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// PoolIndex is the in-memory map torrent -> pools covering it, read on the
// announce path (LedgerSink.Pools) and by the receipt intake: one atomic
// pointer load and a map read, never a Redis call. It reloads on every
// change published on PoolsChannel and periodically, so a missed message
// heals itself, like the registry cache.
type PoolIndex struct {
	pools  *Pools
	log    *zap.Logger
	every  time.Duration
	m      atomic.Pointer[map[[20]byte][]string]
	kick   chan struct{}
	loaded atomic.Bool
}

var globalOnlyPools = []string{GlobalPool}

// NewPoolIndex returns an empty index (global pool only) until Reload.
func NewPoolIndex(pools *Pools, reloadEvery time.Duration, log *zap.Logger) *PoolIndex {
	if reloadEvery <= 0 {
		reloadEvery = time.Minute
	}
	if log == nil {
		log = zap.NewNop()
	}
	x := &PoolIndex{pools: pools, log: log, every: reloadEvery, kick: make(chan struct{}, 1)}
	empty := map[[20]byte][]string{}
	x.m.Store(&empty)
	return x
}

// Lookup names the pools covering a torrent for account.lua and
// receipt.lua: "global", every open content-owner pool listing it, and,
// when there is at least one such pool, the attribution field
// "@<info hash hex>" (TorrentPointsPrefix) that lets settlement report
// each pool's spending per torrent. The slice is shared: do not modify it.
func (x *PoolIndex) Lookup(ih [20]byte) []string {
	if ps, ok := (*x.m.Load())[ih]; ok {
		return ps
	}
	return globalOnlyPools
}

// Loaded reports whether the index was loaded at least once.
func (x *PoolIndex) Loaded() bool { return x.loaded.Load() }

// Refresh asks Run to reload soon (non-blocking).
func (x *PoolIndex) Refresh() {
	select {
	case x.kick <- struct{}{}:
	default:
	}
}

// Reload rebuilds the index from Redis: open pools only.
func (x *PoolIndex) Reload(ctx context.Context) error {
	ids, err := x.pools.IDs(ctx)
	if err != nil {
		return fmt.Errorf("pools: reload: %w", err)
	}
	states := make([]*redis.StringCmd, len(ids))
	sets := make([]*redis.StringSliceCmd, len(ids))
	if len(ids) > 0 {
		_, err = x.pools.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for i, id := range ids {
				states[i] = pl.HGet(ctx, keyPool(id), "state")
				sets[i] = pl.SMembers(ctx, keyPoolTorrents(id))
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("pools: reload: %w", err)
		}
	}
	m := map[[20]byte][]string{}
	for i, id := range ids { // ids in settlement order, so each list is too
		if states[i].Val() != PoolOpen || !ValidPoolID(id) { // as the settler: a bad id never settles
			continue
		}
		for _, h := range sets[i].Val() {
			var ih [20]byte
			if len(h) != 40 { // checked first: Decode would write past ih
				continue
			}
			if _, err := hex.Decode(ih[:], []byte(h)); err != nil {
				continue
			}
			if m[ih] == nil {
				m[ih] = []string{GlobalPool}
			}
			m[ih] = append(m[ih], id)
		}
	}
	for ih, ps := range m {
		m[ih] = append(ps, TorrentPointsPrefix+hex.EncodeToString(ih[:]))
	}
	x.m.Store(&m)
	x.loaded.Store(true)
	return nil
}

// Run follows PoolsChannel and reloads periodically until ctx ends.
func (x *PoolIndex) Run(ctx context.Context) error {
	sub := x.pools.rdb.Subscribe(ctx, PoolsChannel)
	defer sub.Close()
	msgs := sub.Channel()
	if err := x.Reload(ctx); err != nil && ctx.Err() == nil {
		x.log.Warn("pool index load failed; retrying", zap.Error(err))
	}
	t := time.NewTicker(x.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-msgs:
		case <-x.kick:
		case <-t.C:
		}
		if err := x.Reload(ctx); err != nil && ctx.Err() == nil {
			x.log.Warn("pool index reload failed; the next one repairs it", zap.Error(err))
		}
	}
}
