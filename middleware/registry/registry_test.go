package registry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/internal/redistest"
)

func TestNewPasskey(t *testing.T) {
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 2000 {
		pk, err := NewPasskey()
		if err != nil {
			t.Fatal(err)
		}
		if len(pk) != PasskeyLen {
			t.Fatalf("passkey %q has %d characters", pk, len(pk))
		}
		for _, r := range pk {
			if !strings.ContainsRune("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", r) {
				t.Fatalf("passkey %q has %q", pk, r)
			}
			counts[r]++
		}
		if seen[pk] {
			t.Fatalf("passkey %q repeated", pk)
		}
		seen[pk] = true
	}
	// 64000 characters over 62 symbols: about 1032 each; a biased modulo
	// (256 % 62 != 0 without rejection) would push the first 8 symbols to ~1.2x.
	for r, n := range counts {
		if n < 850 || n > 1220 {
			t.Errorf("symbol %q appeared %d times, want about 1032", r, n)
		}
	}
	if len(counts) != 62 {
		t.Errorf("%d distinct symbols, want 62", len(counts))
	}
}

func TestStoreUsers(t *testing.T) {
	ctx := context.Background()
	s := NewStore(redistest.Start(t).Client(t))
	u, err := s.CreateUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.User(ctx, u.ID)
	if err != nil || got != u {
		t.Fatalf("User = %+v, %v; want %+v", got, err, u)
	}
	if id, _ := s.rdb.Get(ctx, keyPasskey(u.Passkey)).Result(); id != u.ID {
		t.Fatalf("passkey index points to %q, want %q", id, u.ID)
	}

	r, err := s.RotatePasskey(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Passkey == u.Passkey || len(r.Passkey) != PasskeyLen {
		t.Fatalf("rotated passkey %q (old %q)", r.Passkey, u.Passkey)
	}
	if n, _ := s.rdb.Exists(ctx, keyPasskey(u.Passkey)).Result(); n != 0 {
		t.Fatal("old passkey still indexed after rotation")
	}

	b, err := s.SetBanned(ctx, u.ID, true)
	if err != nil || !b.Banned {
		t.Fatalf("SetBanned = %+v, %v", b, err)
	}
	if got, _ := s.User(ctx, u.ID); !got.Banned {
		t.Fatal("ban not stored")
	}

	for _, f := range []func() error{
		func() error { _, err := s.User(ctx, "nope"); return err },
		func() error { _, err := s.RotatePasskey(ctx, "nope"); return err },
		func() error { _, err := s.SetBanned(ctx, "nope", true); return err },
	} {
		if err := f(); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown user: %v, want ErrNotFound", err)
		}
	}
}

func TestStoreTorrents(t *testing.T) {
	ctx := context.Background()
	s := NewStore(redistest.Start(t).Client(t))
	ih := bittorrent.InfoHashFromString("aaaaaaaaaaaaaaaaaaaa")
	if _, err := s.PutTorrent(ctx, Torrent{InfoHash: ih, Size: 0}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("size 0: %v, want ErrInvalid", err)
	}
	tt, err := s.PutTorrent(ctx, Torrent{InfoHash: ih, Size: 42, Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutTorrent(ctx, Torrent{InfoHash: ih, Size: 42}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate: %v, want ErrExists", err)
	}
	if got, err := s.Torrent(ctx, ih); err != nil || got != tt {
		t.Fatalf("Torrent = %+v, %v; want %+v", got, err, tt)
	}
	if err := s.AddCompleted(ctx, map[bittorrent.InfoHash]int64{ih: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTorrent(ctx, ih); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Torrent(ctx, ih); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if m, _ := s.Completed(ctx); len(m) != 0 {
		t.Fatalf("completed count survived delete: %v", m)
	}
	if err := s.DeleteTorrent(ctx, ih); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
}

func TestParseInfoHash(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"0123456789abcdef0123456789abcdef01234567", true},
		{"0123456789ABCDEF0123456789ABCDEF01234567", true},
		{"0123456789abcdef0123456789abcdef0123456", false},
		{"0123456789abcdef0123456789abcdef012345678", false},
		{"0123456789abcdef0123456789abcdef0123456g", false},
		{"", false},
	} {
		_, err := ParseInfoHash(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseInfoHash(%q) error %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

// waitFor polls cond (bounded) while pub/sub delivers.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestCacheFollowsPubSub(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdb := redistest.Start(t).Client(t)
	s := NewStore(rdb)
	early, err := s.CreateUser(ctx, "early")
	if err != nil {
		t.Fatal(err)
	}
	// Reload every hour: anything seen below arrived by pub/sub.
	c, err := NewCache(s, CacheConfig{ReloadInterval: time.Hour, FlushInterval: 100 * time.Millisecond}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if c.Ready() {
		t.Fatal("ready before loading")
	}
	if err := c.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.Ready() {
		t.Fatal("not ready after Open")
	}
	if u, ok := c.UserByPasskey(early.Passkey); !ok || u.ID != early.ID {
		t.Fatal("user created before Open not loaded")
	}
	done := make(chan struct{})
	go func() { _ = c.Follow(ctx); close(done) }()

	u, _ := s.CreateUser(ctx, "bob")
	waitFor(t, "new user", func() bool { _, ok := c.UserByPasskey(u.Passkey); return ok })

	r, _ := s.RotatePasskey(ctx, u.ID)
	waitFor(t, "rotation", func() bool {
		_, oldOK := c.UserByPasskey(u.Passkey)
		_, newOK := c.UserByPasskey(r.Passkey)
		return !oldOK && newOK
	})

	_, _ = s.SetBanned(ctx, u.ID, true)
	waitFor(t, "ban", func() bool { x, ok := c.UserByPasskey(r.Passkey); return ok && x.Banned })

	ih := bittorrent.InfoHashFromString("bbbbbbbbbbbbbbbbbbbb")
	_, _ = s.PutTorrent(ctx, Torrent{InfoHash: ih, Size: 9})
	waitFor(t, "torrent", func() bool { _, ok := c.Torrent(ih); return ok })

	c.CountCompleted(ih)
	c.CountCompleted(ih)
	if n, _ := c.Completed(ih); n != 2 {
		t.Fatalf("completed %d, want 2 (pending counts visible at once)", n)
	}
	waitFor(t, "completed flushed to redis", func() bool {
		m, _ := s.Completed(ctx)
		return m[ih.String()] == "2"
	})
	if n, _ := c.Completed(ih); n != 2 {
		t.Fatalf("completed %d after flush, want 2 (not double counted)", n)
	}

	_ = s.DeleteTorrent(ctx, ih)
	waitFor(t, "torrent removal", func() bool { _, ok := c.Torrent(ih); return !ok })
	cancel()
	<-done
}

func TestCacheReloadRepairsMissedChanges(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	s := NewStore(rdb)
	c, _ := NewCache(s, CacheConfig{}, zap.NewNop())
	u, _ := s.CreateUser(ctx, "a")
	ih := bittorrent.InfoHashFromString("cccccccccccccccccccc")
	_, _ = s.PutTorrent(ctx, Torrent{InfoHash: ih, Size: 1})
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	// Changes made behind the cache's back (no Follow running).
	r, _ := s.RotatePasskey(ctx, u.ID)
	_ = s.DeleteTorrent(ctx, ih)
	rdb.HSet(ctx, keyUser("broken"), "name", "x") // no passkey: skipped, not fatal
	rdb.SAdd(ctx, keyUsers, "broken")
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.UserByPasskey(u.Passkey); ok {
		t.Error("old passkey still accepted after reload")
	}
	if _, ok := c.UserByPasskey(r.Passkey); !ok {
		t.Error("new passkey not loaded")
	}
	if _, ok := c.Torrent(ih); ok {
		t.Error("deleted torrent still cached")
	}
	if users, torrents := c.Counts(); users != 1 || torrents != 0 {
		t.Errorf("counts %d users, %d torrents; want 1, 0", users, torrents)
	}
}

func TestCacheConfigValidate(t *testing.T) {
	if _, err := (CacheConfig{ReloadInterval: time.Millisecond}).Validate(); err == nil || !strings.Contains(err.Error(), "reload_interval") {
		t.Errorf("short reload: %v", err)
	}
	if _, err := (CacheConfig{FlushInterval: time.Millisecond}).Validate(); err == nil || !strings.Contains(err.Error(), "flush_interval") {
		t.Errorf("short flush: %v", err)
	}
	c, err := CacheConfig{}.Validate()
	if err != nil || c.ReloadInterval != time.Minute || c.FlushInterval != 5*time.Second {
		t.Errorf("defaults %+v, %v", c, err)
	}
}

func TestConcurrentWritesLeaveNoOrphans(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	s := NewStore(rdb)
	ih := bittorrent.InfoHashFromString("dddddddddddddddddddd")
	u, _ := s.CreateUser(ctx, "a")

	const n = 8
	putErrs := make(chan error, n)
	rotErrs := make(chan error, n)
	for range n {
		go func() { _, err := s.PutTorrent(ctx, Torrent{InfoHash: ih, Size: 5}); putErrs <- err }()
		go func() { _, err := s.RotatePasskey(ctx, u.ID); rotErrs <- err }()
	}
	wins := 0
	for range n {
		if err := <-putErrs; err == nil {
			wins++
		} else if !errors.Is(err, ErrExists) {
			t.Fatalf("PutTorrent: %v", err)
		}
		<-rotErrs // a rotation may lose the race; it must not leave debris
	}
	if wins != 1 {
		t.Fatalf("%d registrations of one info_hash succeeded, want 1", wins)
	}
	keys, err := rdb.Keys(ctx, keyPasskey("*")).Result()
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := s.User(ctx, u.ID)
	if len(keys) != 1 || keys[0] != keyPasskey(cur.Passkey) {
		t.Fatalf("passkey index %v, want exactly the current passkey %s", keys, cur.Passkey)
	}
}

func TestCacheRefreshesReRegisteredTorrent(t *testing.T) {
	ctx := context.Background()
	s := NewStore(redistest.Start(t).Client(t))
	c, _ := NewCache(s, CacheConfig{}, zap.NewNop())
	ih := bittorrent.InfoHashFromString("eeeeeeeeeeeeeeeeeeee")
	_, _ = s.PutTorrent(ctx, Torrent{InfoHash: ih, Size: 5, Name: "old"})
	_ = c.Reload(ctx)
	c.CountCompleted(ih)
	// Deleted and registered again while this instance missed both messages.
	_ = s.DeleteTorrent(ctx, ih)
	_, _ = s.PutTorrent(ctx, Torrent{InfoHash: ih, Size: 7, Name: "new"})
	_ = c.Reload(ctx)
	e, ok := c.Torrent(ih)
	if !ok || e.Name != "new" || e.Size != 7 {
		t.Fatalf("cached %+v, want the new registration", e)
	}
	if e.Completed() != 1 {
		t.Fatalf("pending completion lost on refresh: %d", e.Completed())
	}
}
