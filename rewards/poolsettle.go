package rewards

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strconv"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// applyPoolSpend records what a sealed record spent from each pool, once
// per (pool, epoch): the field of sp:pool:<id>:ep is the idempotency mark,
// written in the same transaction as the new spent total and per-torrent
// totals, and only while token holds the settler lock.
func (s *Settler) applyPoolSpend(ctx context.Context, rec *Record, token int64) error {
	field := strconv.FormatInt(rec.Epoch, 10)
	for _, pr := range rec.Pools {
		credited, ok := new(big.Int).SetString(pr.Credited, 10)
		if !ok {
			return fmt.Errorf("settler: record %d: pool %s credited %q", rec.Epoch, pr.ID, pr.Credited)
		}
		if credited.Sign() == 0 {
			continue
		}
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			if err := s.checkLeader(ctx, tx, token); err != nil {
				return err
			}
			done, err := tx.HExists(ctx, keyPoolEpochs(pr.ID), field).Result()
			if err != nil || done {
				return err
			}
			spent, err := readAmountField(ctx, tx, keyPool(pr.ID), "spent")
			if err != nil {
				return err
			}
			spent.Add(spent, credited)
			var tsp map[string]string
			if len(pr.Torrents) > 0 {
				if tsp, err = tx.HGetAll(ctx, keyPoolTorrentSpend(pr.ID)).Result(); err != nil {
					return err
				}
			}
			// New totals, all parsed before anything is written: a corrupt
			// stored total or record amount fails the whole spend (the
			// settler retries and an operator sees it), never a silent skip.
			totals := make(map[string]string, len(pr.Torrents))
			unattributed := new(big.Int)
			for ih, a := range pr.Torrents {
				add, ok := new(big.Int).SetString(a, 10)
				if !ok {
					return fmt.Errorf("record %d: pool %s torrent %s amount %q is not an integer", rec.Epoch, pr.ID, ih, a)
				}
				if ih == legacyUnattributed { // records sealed before PoolRecord.Unattributed
					unattributed.Add(unattributed, add)
					continue
				}
				v, ok := new(big.Int).SetString(orZero(tsp[ih]), 10)
				if !ok {
					return fmt.Errorf("%s %s: stored %q is not an integer", keyPoolTorrentSpend(pr.ID), ih, tsp[ih])
				}
				totals[ih] = v.Add(v, add).String()
			}
			if pr.Unattributed != "" {
				add, ok := new(big.Int).SetString(pr.Unattributed, 10)
				if !ok {
					return fmt.Errorf("record %d: pool %s unattributed %q is not an integer", rec.Epoch, pr.ID, pr.Unattributed)
				}
				unattributed.Add(unattributed, add)
			}
			var unattributedTotal *big.Int
			if unattributed.Sign() > 0 {
				if unattributedTotal, err = readAmountField(ctx, tx, keyPool(pr.ID), "unattributed"); err != nil {
					return err
				}
				unattributedTotal.Add(unattributedTotal, unattributed)
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, keyPool(pr.ID), "spent", spent.String())
				p.HSet(ctx, keyPoolEpochs(pr.ID), field, pr.Credited)
				for ih, v := range totals {
					p.HSet(ctx, keyPoolTorrentSpend(pr.ID), ih, v)
				}
				if unattributedTotal != nil {
					p.HSet(ctx, keyPool(pr.ID), "unattributed", unattributedTotal.String())
				}
				return nil
			})
			return err
		}, KeySettleLock, keyPool(pr.ID), keyPoolEpochs(pr.ID), keyPoolTorrentSpend(pr.ID))
		if err != nil {
			return fmt.Errorf("settler: pool %s spend of epoch %d: %w", pr.ID, rec.Epoch, err)
		}
	}
	return nil
}

// legacyUnattributed is the key records sealed before
// PoolRecord.Unattributed used in Torrents for the unattributed part.
const legacyUnattributed = "other"

// refundClosing refunds every closing pool: its remaining balance is
// credited to the pseudo-account "pool:<id>" (which the payer pays to the
// refund address, whatever min_payout says) and the pool becomes closed, in
// one transaction. It runs only while token leads and epoch next is not
// sealed (watched), so no sealed record can still spend from the pool: the
// remaining it refunds is final. Running it again refunds nothing more.
func (s *Settler) refundClosing(ctx context.Context, token, next int64) error {
	ids, err := s.rdb.SMembers(ctx, keyPoolsSet).Result()
	if err != nil {
		return fmt.Errorf("settler: pools: %w", err)
	}
	sortPoolIDs(ids)
	states := make([]*redis.StringCmd, len(ids))
	if len(ids) > 0 {
		if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				states[i] = p.HGet(ctx, keyPool(id), "state")
			}
			return nil
		}); err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("settler: pool states: %w", err)
		}
	}
	for i, id := range ids {
		if states[i].Val() != PoolClosing {
			continue
		}
		acct := PoolAccount(id)
		var refund *big.Int
		err = s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			refund = nil
			if err := s.checkLeader(ctx, tx, token); err != nil {
				return err
			}
			if n, err := tx.Exists(ctx, KeyEpochRecord(next)).Result(); err != nil || n == 1 {
				return err // sealed meanwhile: the next pass refunds after crediting it
			}
			m, err := tx.HGetAll(ctx, keyPool(id)).Result()
			if err != nil || m["state"] != PoolClosing {
				return err
			}
			rem, err := remainingOf(m)
			if err != nil {
				return err
			}
			if rem.Sign() < 0 {
				return fmt.Errorf("pool %s: remaining %s is negative", id, rem)
			}
			refunded, _ := new(big.Int).SetString(orZero(m["refunded"]), 10)
			bal, err := readBalance(ctx, tx, acct)
			if err != nil {
				return err
			}
			refund = rem
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, keyPool(id), "state", PoolClosed, "refunded", new(big.Int).Add(refunded, rem).String())
				if rem.Sign() > 0 {
					p.Set(ctx, KeyBalance(acct), new(big.Int).Add(bal, rem).String(), 0)
					p.SAdd(ctx, KeyPayoutCandidates, acct)
				}
				return nil
			})
			return err
		}, KeySettleLock, keyPool(id), KeyEpochRecord(next), KeyBalance(acct))
		if errors.Is(err, redis.TxFailedErr) {
			continue // raced: the next pass retries
		}
		if err != nil {
			return fmt.Errorf("settler: refund pool %s: %w", id, err)
		}
		if refund != nil {
			s.log.Info("pool closed and refunded", zap.String("pool", id), zap.String("refund", refund.String()), zap.String("account", acct))
			_ = s.rdb.Publish(ctx, PoolsChannel, id).Err()
		}
	}
	return nil
}

func readAmountField(ctx context.Context, c redis.Cmdable, key, field string) (*big.Int, error) {
	v, err := c.HGet(ctx, key, field).Result()
	if errors.Is(err, redis.Nil) {
		return new(big.Int), nil
	}
	if err != nil {
		return nil, err
	}
	b, ok := new(big.Int).SetString(v, 10)
	if !ok {
		return nil, fmt.Errorf("%s %s: stored %q is not an integer", key, field, v)
	}
	return b, nil
}
