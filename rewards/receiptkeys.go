package rewards

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// ErrKeyTaken: the receipt key is registered to another user. A key belongs
// to one user for good, so receipts can always be attributed.
var ErrKeyTaken = errors.New("key registered to another user")

func keyReceiptKey(pub [32]byte) string { return "sp:rkey:" + hex.EncodeToString(pub[:]) }

// KeyUserReceiptKeys is the set of a user's receipt keys (hex).
func KeyUserReceiptKeys(user string) string { return "sp:{u:" + user + "}:rkeys" }

// ReceiptKeys maps ed25519 receipt keys to their users.
type ReceiptKeys struct{ rdb redis.UniversalClient }

// NewReceiptKeys returns the key registry.
func NewReceiptKeys(rdb redis.UniversalClient) *ReceiptKeys { return &ReceiptKeys{rdb: rdb} }

// Register gives pub to user; registering it again for the same user is a
// no-op, for another user ErrKeyTaken.
func (k *ReceiptKeys) Register(ctx context.Context, user string, pub [32]byte) error {
	ok, err := k.rdb.SetNX(ctx, keyReceiptKey(pub), user, 0).Result()
	if err != nil {
		return fmt.Errorf("register receipt key: %w", err)
	}
	if !ok {
		owner, err := k.rdb.Get(ctx, keyReceiptKey(pub)).Result()
		if err != nil {
			return fmt.Errorf("register receipt key: %w", err)
		}
		if owner != user {
			return ErrKeyTaken
		}
	}
	if err := k.rdb.SAdd(ctx, KeyUserReceiptKeys(user), hex.EncodeToString(pub[:])).Err(); err != nil {
		return fmt.Errorf("register receipt key: %w", err)
	}
	return nil
}

// Owners returns the user of each key ("" for an unregistered one), in one
// round trip.
func (k *ReceiptKeys) Owners(ctx context.Context, pubs [][32]byte) ([]string, error) {
	if len(pubs) == 0 {
		return nil, nil
	}
	keys := make([]string, len(pubs))
	for i, p := range pubs {
		keys[i] = keyReceiptKey(p)
	}
	vals, err := k.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("receipt key owners: %w", err)
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			out[i] = s
		}
	}
	return out, nil
}

// UserKeys lists a user's receipt keys (hex).
func (k *ReceiptKeys) UserKeys(ctx context.Context, user string) ([]string, error) {
	return k.rdb.SMembers(ctx, KeyUserReceiptKeys(user)).Result()
}
