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
	// Pools names the pools covering a torrent (the global pool among
	// them); nil means the global pool only.
	Pools func(infoHash [20]byte) []string
}

// Account implements Sink.
func (s LedgerSink) Account(ctx context.Context, events []rewards.Event) error {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	_, err := s.Accountant.Account(ctx, events, s.Epoch.MinOpenEpoch(now()), s.Pools) // nil: the global pool
	return err
}
