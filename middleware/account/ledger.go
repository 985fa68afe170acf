package account

import (
	"context"
	"time"

	"github.com/seedpay/seedpay/rewards"
)

// LedgerSink writes batches through the rewards accountant. Epochs already
// past their grace are closed to new credit: the settler may be sealing them.
type LedgerSink struct {
	Accountant *rewards.Accountant
	Epoch      rewards.EpochConfig
	Now        func() time.Time
}

var globalOnly = []string{rewards.GlobalPool}

// Account implements Sink. Every torrent is in the global pool; content-owner
// pools (issue 7) extend the pool lookup.
func (s LedgerSink) Account(ctx context.Context, events []rewards.Event) error {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	_, err := s.Accountant.Account(ctx, events, s.Epoch.MinOpenEpoch(now()), func([20]byte) []string { return globalOnly })
	return err
}
