package registry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Entry is a cached torrent plus its completion count, which the tracker
// counts locally and adds to Redis in batches.
type Entry struct {
	Torrent
	counts *completedCounts // shared with the entry this one replaced
}

// completedCounts is a torrent's completion count. What scrapes show is one
// word, total, which a flush or a reload never stores over, only adds to: a
// count read mid-flush is neither short by what is in flight nor double.
type completedCounts struct {
	// total is base plus this instance's completions not yet in Redis.
	total atomic.Int64
	// pending is the completions counted here and not yet sent to Redis.
	pending atomic.Int64
	// base is Redis's count as this instance last read or wrote it
	// (under Cache.mu).
	base int64
}

// Completed is the number of completed downloads known to this instance.
func (e *Entry) Completed() int64 {
	if e.counts == nil {
		return 0
	}
	return e.counts.total.Load()
}

// Cache is the in-memory view of the registry used on the announce path:
// lookups are lock-free map reads. It follows changes published on Channel
// and reloads everything periodically, so a missed message heals itself.
type Cache struct {
	store       *Store
	log         *zap.Logger
	reloadEvery time.Duration
	flushEvery  time.Duration

	users    sync.Map // id -> *User
	passkeys sync.Map // passkey -> *User
	torrents sync.Map // bittorrent.InfoHash -> *Entry

	mu    sync.Mutex // serialises writers (reload vs. single updates)
	ready atomic.Bool
	sub   *redis.PubSub
}

// CacheConfig holds the cache's timing.
type CacheConfig struct {
	// ReloadInterval is how often the whole registry is re-read from Redis.
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// FlushInterval is how often completion counts go to Redis.
	FlushInterval time.Duration `yaml:"flush_interval"`
}

// Validate checks the config and fills defaults.
func (c CacheConfig) Validate() (CacheConfig, error) {
	if c.ReloadInterval == 0 {
		c.ReloadInterval = time.Minute
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 5 * time.Second
	}
	if c.ReloadInterval < time.Second {
		return c, fmt.Errorf("reload_interval %s: must be at least 1s: %w", c.ReloadInterval, ErrInvalid)
	}
	if c.FlushInterval < 100*time.Millisecond {
		return c, fmt.Errorf("flush_interval %s: must be at least 100ms: %w", c.FlushInterval, ErrInvalid)
	}
	return c, nil
}

// NewCache returns an empty cache; call Reload (or Run) before use.
func NewCache(store *Store, cfg CacheConfig, log *zap.Logger) (*Cache, error) {
	cfg, err := cfg.Validate()
	if err != nil {
		return nil, err
	}
	return &Cache{store: store, log: log, reloadEvery: cfg.ReloadInterval, flushEvery: cfg.FlushInterval}, nil
}

// UserByPasskey returns the user owning passkey.
func (c *Cache) UserByPasskey(passkey string) (*User, bool) {
	v, ok := c.passkeys.Load(passkey)
	if !ok {
		return nil, false
	}
	return v.(*User), true
}

// Torrent returns the registered torrent with info hash ih.
func (c *Cache) Torrent(ih bittorrent.InfoHash) (*Entry, bool) {
	v, ok := c.torrents.Load(ih)
	if !ok {
		return nil, false
	}
	return v.(*Entry), true
}

// CountCompleted records one completed download of a registered torrent.
func (c *Cache) CountCompleted(ih bittorrent.InfoHash) {
	if e, ok := c.Torrent(ih); ok {
		e.counts.pending.Add(1)
		e.counts.total.Add(1)
	}
}

// Completed returns the completed-download count of a registered torrent.
func (c *Cache) Completed(ih bittorrent.InfoHash) (int64, bool) {
	e, ok := c.Torrent(ih)
	if !ok {
		return 0, false
	}
	return e.Completed(), true
}

// Ready reports whether the cache has been loaded at least once.
func (c *Cache) Ready() bool { return c.ready.Load() }

// Counts returns the number of cached users and torrents.
func (c *Cache) Counts() (users, torrents int) {
	c.users.Range(func(any, any) bool { users++; return true })
	c.torrents.Range(func(any, any) bool { torrents++; return true })
	return users, torrents
}

// Reload replaces the cache's content with what Redis holds now.
func (c *Cache) Reload(ctx context.Context) error {
	users, err := c.store.allUsers(ctx)
	if err != nil {
		return err
	}
	torrents, err := c.store.allTorrents(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Read under mu, which a flush holds: the counts then include every
	// flush that changed base.
	completed, err := c.store.Completed(ctx)
	if err != nil {
		return err
	}
	seenUsers := make(map[string]struct{}, len(users))
	for i := range users {
		seenUsers[users[i].ID] = struct{}{}
		c.putUserLocked(&users[i])
	}
	c.users.Range(func(k, _ any) bool {
		if _, ok := seenUsers[k.(string)]; !ok {
			c.removeUserLocked(k.(string))
		}
		return true
	})
	seenTorrents := make(map[bittorrent.InfoHash]struct{}, len(torrents))
	for _, t := range torrents {
		seenTorrents[t.InfoHash] = struct{}{}
		e := c.putTorrentLocked(t)
		n, _ := strconv.ParseInt(completed[t.InfoHash.String()], 10, 64)
		e.counts.total.Add(n - e.counts.base)
		e.counts.base = n
	}
	c.torrents.Range(func(k, _ any) bool {
		if _, ok := seenTorrents[k.(bittorrent.InfoHash)]; !ok {
			c.torrents.Delete(k)
		}
		return true
	})
	c.ready.Store(true)
	return nil
}

func (c *Cache) putUserLocked(u *User) {
	if old, ok := c.users.Load(u.ID); ok && old.(*User).Passkey != u.Passkey {
		c.passkeys.Delete(old.(*User).Passkey)
	}
	c.users.Store(u.ID, u)
	c.passkeys.Store(u.Passkey, u)
}

func (c *Cache) removeUserLocked(id string) {
	if old, ok := c.users.LoadAndDelete(id); ok {
		c.passkeys.Delete(old.(*User).Passkey)
	}
}

// putTorrentLocked stores t; an existing entry with the same metadata is
// kept, and a replaced one shares its counts with the new entry (so a
// completion counted on the old one meanwhile is not lost).
func (c *Cache) putTorrentLocked(t Torrent) *Entry {
	old, ok := c.torrents.Load(t.InfoHash)
	if ok && old.(*Entry).Torrent == t {
		return old.(*Entry)
	}
	e := &Entry{Torrent: t, counts: &completedCounts{}}
	if ok {
		e.counts = old.(*Entry).counts
	}
	c.torrents.Store(t.InfoHash, e)
	return e
}

// apply refreshes one record named by a pub/sub message ("u:<id>" or "t:<hex>").
func (c *Cache) apply(ctx context.Context, msg string) error {
	kind, key, ok := strings.Cut(msg, ":")
	if !ok {
		return fmt.Errorf("registry message %q: %w", msg, ErrInvalid)
	}
	switch kind {
	case "u":
		u, err := c.store.User(ctx, key)
		c.mu.Lock()
		defer c.mu.Unlock()
		switch {
		case errors.Is(err, ErrNotFound):
			c.removeUserLocked(key)
		case err != nil:
			return err
		default:
			c.putUserLocked(&u)
		}
	case "t":
		ih, err := ParseInfoHash(key)
		if err != nil {
			return err
		}
		t, err := c.store.Torrent(ctx, ih)
		c.mu.Lock()
		defer c.mu.Unlock()
		switch {
		case errors.Is(err, ErrNotFound):
			c.torrents.Delete(ih)
		case err != nil:
			return err
		default:
			c.putTorrentLocked(t)
		}
	default:
		return fmt.Errorf("registry message %q: %w", msg, ErrInvalid)
	}
	return nil
}

// SyncUser makes this instance's cache reflect user id as stored now, so a
// client announcing right after the admin API answered is not refused;
// other instances follow within milliseconds by pub/sub.
func (c *Cache) SyncUser(ctx context.Context, id string) error { return c.apply(ctx, "u:"+id) }

// SyncTorrent is SyncUser for a torrent.
func (c *Cache) SyncTorrent(ctx context.Context, ih bittorrent.InfoHash) error {
	return c.apply(ctx, "t:"+ih.String())
}

// FlushCompleted sends pending completion counts to Redis. It holds mu, so
// a reload sees Redis either before or after it, never between.
func (c *Cache) FlushCompleted(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	sent := make(map[bittorrent.InfoHash]int64)
	c.torrents.Range(func(k, v any) bool {
		if n := v.(*Entry).counts.pending.Swap(0); n > 0 {
			sent[k.(bittorrent.InfoHash)] = n
		}
		return true
	})
	err := c.store.AddCompleted(ctx, sent)
	// Under mu no entry was replaced or removed meanwhile.
	for ih, n := range sent {
		e, _ := c.Torrent(ih)
		if err != nil {
			e.counts.pending.Add(n) // kept for the next flush
		} else {
			e.counts.base += n
		}
	}
	return err
}

// Open subscribes to changes, then loads everything. Subscribing first means
// no change can fall between the load and the subscription.
func (c *Cache) Open(ctx context.Context) error {
	sub := c.store.rdb.Subscribe(ctx, Channel)
	if _, err := sub.Receive(ctx); err != nil {
		_ = sub.Close()
		return fmt.Errorf("registry: subscribe %s: %w", Channel, err)
	}
	if err := c.Reload(ctx); err != nil {
		_ = sub.Close()
		return fmt.Errorf("registry: load: %w", err)
	}
	c.sub = sub
	users, torrents := c.Counts()
	c.log.Info("registry loaded", zap.Int("users", users), zap.Int("torrents", torrents))
	return nil
}

// Follow applies published changes, reloads periodically and flushes
// completion counts until ctx ends. Errors are logged and healed by the next
// reload; it returns nil at the end.
func (c *Cache) Follow(ctx context.Context) error {
	if c.sub == nil {
		return errors.New("registry: Follow before Open")
	}
	defer c.sub.Close()
	msgs := c.sub.Channel()
	reload := time.NewTicker(c.reloadEvery)
	defer reload.Stop()
	flush := time.NewTicker(c.flushEvery)
	defer flush.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := c.FlushCompleted(fctx); err != nil {
				c.log.Warn("final completed-count flush failed", zap.Error(err))
			}
			cancel()
			return nil
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			if err := c.apply(ctx, m.Payload); err != nil {
				c.log.Warn("registry update failed; the next reload repairs it", zap.String("message", m.Payload), zap.Error(err))
			}
		case <-reload.C:
			if err := c.Reload(ctx); err != nil {
				c.log.Warn("registry reload failed", zap.Error(err))
			}
		case <-flush.C:
			if err := c.FlushCompleted(ctx); err != nil {
				c.log.Warn("completed-count flush failed", zap.Error(err))
			}
		}
	}
}
