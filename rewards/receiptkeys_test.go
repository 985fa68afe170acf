package rewards

import (
	"context"
	"errors"
	"testing"

	"github.com/seedpay/seedpay/internal/redistest"
)

func TestReceiptKeys(t *testing.T) {
	ctx := context.Background()
	k := NewReceiptKeys(redistest.Start(t).Client(t))
	var a, b, c [32]byte
	a[0], b[0], c[0] = 1, 2, 3
	if err := k.Register(ctx, "alice", a); err != nil {
		t.Fatal(err)
	}
	if err := k.Register(ctx, "alice", a); err != nil {
		t.Fatalf("registering again for the same user: %v", err)
	}
	if err := k.Register(ctx, "bob", a); !errors.Is(err, ErrKeyTaken) {
		t.Fatalf("another user's key: %v, want ErrKeyTaken", err)
	}
	_ = k.Register(ctx, "bob", b)
	owners, err := k.Owners(ctx, [][32]byte{a, b, c})
	if err != nil {
		t.Fatal(err)
	}
	if owners[0] != "alice" || owners[1] != "bob" || owners[2] != "" {
		t.Fatalf("owners %v", owners)
	}
	if keys, _ := k.UserKeys(ctx, "alice"); len(keys) != 1 {
		t.Fatalf("alice's keys %v", keys)
	}
}
