package registry

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/internal/redistest"
)

// holdFlush holds one pipeline, the first after arming, after Redis has
// run it and before its reply reaches the caller: the window in which a
// flush is in flight. Or, refusing, it fails the next pipeline unsent.
type holdFlush struct {
	armed   atomic.Bool
	refuse  atomic.Bool // fail the next pipeline before sending it
	landed  chan struct{}
	release chan struct{}
}

var errRefused = errors.New("injected: connection refused")

func (h *holdFlush) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *holdFlush) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *holdFlush) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.refuse.CompareAndSwap(true, false) {
			return errRefused
		}
		err := next(ctx, cmds)
		if h.armed.CompareAndSwap(true, false) {
			h.landed <- struct{}{}
			<-h.release
		}
		return err
	}
}

// twoCompleted is a cache over a real redis-server (its client hooked by h)
// with one registered torrent, ih, counted completed twice and not flushed.
func twoCompleted(t *testing.T, h *holdFlush) (*Store, *Cache, bittorrent.InfoHash) {
	t.Helper()
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	rdb.AddHook(h)
	s := NewStore(rdb)
	ih := bittorrent.InfoHashFromString("cccccccccccccccccccc")
	if _, err := s.PutTorrent(ctx, Torrent{InfoHash: ih, Size: 9}); err != nil {
		t.Fatal(err)
	}
	c, err := NewCache(s, CacheConfig{ReloadInterval: time.Hour, FlushInterval: time.Hour}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Open(ctx); err != nil {
		t.Fatal(err)
	}
	c.CountCompleted(ih)
	c.CountCompleted(ih)
	return s, c, ih
}

// TestCompletedExactThroughFlush: a torrent's completion count reads the
// same before, during and after a flush, and a reload that runs while the
// flush is in flight neither loses nor doubles it.
func TestCompletedExactThroughFlush(t *testing.T) {
	ctx := context.Background()
	h := &holdFlush{landed: make(chan struct{}, 1), release: make(chan struct{})}
	s, c, ih := twoCompleted(t, h)

	h.armed.Store(true)
	flushed := make(chan error, 1)
	go func() { flushed <- c.FlushCompleted(ctx) }()
	<-h.landed // Redis has 2; the flush has not seen its reply
	if n, _ := c.Completed(ih); n != 2 {
		t.Fatalf("completed %d while the flush is in flight, want 2", n)
	}
	reloaded := make(chan error, 1)
	go func() { reloaded <- c.Reload(ctx) }()
	select {
	case err := <-reloaded:
		t.Fatalf("reload ran in the middle of a flush (err %v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(h.release)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if err := <-reloaded; err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Completed(ih); n != 2 {
		t.Fatalf("completed %d after the flush and a reload, want 2", n)
	}
	if m, _ := s.Completed(ctx); m[ih.String()] != "2" {
		t.Fatalf("redis has %q, want 2", m[ih.String()])
	}

	// Another instance's completions arrive by reload; ours still pending
	// stay counted once.
	if err := s.AddCompleted(ctx, map[bittorrent.InfoHash]int64{ih: 5}); err != nil {
		t.Fatal(err)
	}
	c.CountCompleted(ih)
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Completed(ih); n != 8 {
		t.Fatalf("completed %d after another instance's 5 and one more here, want 8", n)
	}

	if err := c.FlushCompleted(ctx); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Completed(ctx); m[ih.String()] != "8" {
		t.Fatalf("redis has %q after the last flush, want 8", m[ih.String()])
	}
}

// TestCompletedKeptWhenFlushFails: counts a flush could not send stay
// shown and go with the next flush, once.
func TestCompletedKeptWhenFlushFails(t *testing.T) {
	ctx := context.Background()
	h := &holdFlush{}
	s, c, ih := twoCompleted(t, h)
	h.refuse.Store(true)
	if err := c.FlushCompleted(ctx); !errors.Is(err, errRefused) {
		t.Fatalf("flush: %v, want the injected error", err)
	}
	if n, _ := c.Completed(ih); n != 2 {
		t.Fatalf("completed %d after a failed flush, want 2", n)
	}
	c.CountCompleted(ih)
	if err := c.FlushCompleted(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Completed(ctx); m[ih.String()] != "3" {
		t.Fatalf("redis has %q, want 3", m[ih.String()])
	}
	if n, _ := c.Completed(ih); n != 3 {
		t.Fatalf("completed %d after the retry and a reload, want 3", n)
	}
}
