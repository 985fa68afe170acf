package rewards

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// ErrUnsafeLedger: the Redis holding the ledger may lose acknowledged writes.
var ErrUnsafeLedger = errors.New("ledger redis does not persist every write")

// CheckDurableLedger refuses a Redis that could lose a payout after a crash:
// the outbox relies on "stored before broadcast", which only holds if every
// write reaches the disk (appendonly yes, appendfsync always).
func CheckDurableLedger(ctx context.Context, rdb redis.UniversalClient) error {
	want := map[string]string{"appendonly": "yes", "appendfsync": "always"}
	for key, val := range want {
		got, err := rdb.ConfigGet(ctx, key).Result()
		if err != nil {
			return fmt.Errorf("CONFIG GET %s: %w", key, err)
		}
		if got[key] != val {
			return fmt.Errorf("%s is %q, need %q (or set payouts.accept_unsafe_ledger: true): %w", key, got[key], val, ErrUnsafeLedger)
		}
	}
	return nil
}
