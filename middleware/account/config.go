package account

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/rewards"
)

// FromConfig builds the accounting hook of cfg.Sessions. In local mode it
// takes the single-instance lease and restores the sessions the previous
// run saved, so call it before any announce is served. pools names the
// pools covering a torrent (nil: the global pool only).
func FromConfig(ctx context.Context, cfg rewards.Config, rdb redis.UniversalClient, torrents Torrents,
	pools func(infoHash [20]byte) []string, reg prometheus.Registerer, log *zap.Logger) (*Hook, error) {
	if cfg.Sessions == rewards.SessionsRedis {
		acct, err := rewards.NewAccountant(rdb, cfg)
		if err != nil {
			return nil, err
		}
		return New(Config{ShardCapacity: cfg.BufferSize, FlushInterval: cfg.FlushInterval}, torrents,
			LedgerSink{Accountant: acct, Epoch: cfg.Epoch, Pools: pools}, reg, log)
	}
	acct, err := rewards.NewLocalAccountant(cfg)
	if err != nil {
		return nil, err
	}
	flusher, err := rewards.NewLocalFlusher(rdb, acct, cfg, rewards.LocalFlusherConfig{
		FlushInterval:    cfg.FlushInterval,
		SnapshotInterval: cfg.SnapshotInterval,
	}, reg, log)
	if err != nil {
		return nil, err
	}
	if err := flusher.Start(ctx); err != nil {
		return nil, err
	}
	log.Info("accounting sessions in memory (rewards.sessions: local): one tracker instance per Redis",
		zap.String("instance", flusher.Instance()), zap.Duration("snapshot_interval", cfg.SnapshotInterval))
	return NewLocal(torrents, acct, flusher, cfg.Epoch, pools, reg, log)
}
