package rewards

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/seedpay/seedpay/internal/redistest"
)

// TestRescanScript: rescan.lua moves the cursor back only, reports the
// cursor before, and sets the first block before any scan; on a real
// redis-server and on the embedded store.
func TestRescanScript(t *testing.T) {
	stores := map[string]func(t *testing.T) redis.UniversalClient{
		"redis-server": func(t *testing.T) redis.UniversalClient { return redistest.Start(t).Client(t) },
		"embedded": func(t *testing.T) redis.UniversalClient {
			return redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			rdb := open(t)
			steps := []struct {
				from, prev, next, cursor int64
				forward                  bool
			}{
				{from: 40, prev: 0, next: 40, cursor: 40}, // no scan yet: the first block
				{from: 40, prev: 40, next: 40, cursor: 40, forward: true},
				{from: 41, prev: 40, next: 40, cursor: 40, forward: true},
				{from: 12, prev: 40, next: 12, cursor: 12},
				{from: 0, prev: 12, next: 0, cursor: 0},
			}
			for i, s := range steps {
				prev, next, err := RescanDeposits(ctx, rdb, s.from)
				if errors.Is(err, ErrRescanForward) != s.forward || !s.forward && err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if prev != s.prev || next != s.next {
					t.Fatalf("step %d: %d -> %d, want %d -> %d", i, prev, next, s.prev, s.next)
				}
				if cur, err := rdb.Get(ctx, keyDepositCursor).Int64(); err != nil || cur != s.cursor {
					t.Fatalf("step %d: cursor %d %v, want %d", i, cur, err, s.cursor)
				}
			}
			if _, _, err := RescanDeposits(ctx, rdb, -1); err == nil {
				t.Fatal("negative from_block accepted")
			}
		})
	}
}

// TestRescanWhileWatching: rescans racing busy cursor moves all succeed
// (the WATCH loop they replace gave up after 10 conflicts, an internal
// error to the operator).
func TestRescanWhileWatching(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	w := newTestWatcher(t, rdb, &fakeTransfers{head: 10})
	if err := rdb.Set(ctx, keyDepositCursor, 1_000_000, 0).Err(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100_000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				if g == 0 {
					_, err = w.advance(ctx, 1_000_000, 2_000_000+int64(i))
				} else {
					// Another watcher far ahead, moving on.
					err = rdb.IncrBy(ctx, keyDepositCursor, 1).Err()
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range 300 {
		// Back to 0 each time; at the cursor already (nothing moved it
		// since) is the one refusal allowed.
		if _, next, err := RescanDeposits(ctx, rdb, 0); err != nil && !errors.Is(err, ErrRescanForward) {
			t.Errorf("rescan %d: %v", i, err)
			break
		} else if err == nil && next != 0 {
			t.Errorf("rescan %d: cursor %d", i, next)
			break
		}
	}
	close(stop)
	wg.Wait()
}
