// Package registry keeps the community's users and torrents in Redis and an
// in-memory copy of them for the announce path, which must never wait on a
// Redis round trip.
package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/redis/go-redis/v9"
)

// PasskeyLen is the length of a passkey: 32 characters of [0-9A-Za-z], about
// 190 bits from crypto/rand.
const PasskeyLen = 32

// Errors callers check with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrInvalid  = errors.New("invalid")
)

// User is a registered member of the community.
type User struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Passkey   string `json:"passkey"`
	Banned    bool   `json:"banned"`
	CreatedAt int64  `json:"created_at"`
}

// Torrent is a registered torrent; in private mode only these are tracked.
type Torrent struct {
	InfoHash  bittorrent.InfoHash `json:"-"`
	Name      string              `json:"name"`
	Size      int64               `json:"size"`
	CreatedAt int64               `json:"created_at"`
}

// Channel is the pub/sub channel on which every change is announced so that
// each tracker instance refreshes its cache within milliseconds.
const Channel = "seedpay:registry"

// Redis keys. User and torrent records are hashes; the sets list them for a
// full reload without SCAN.
const (
	keyUsers      = "seedpay:users"
	keyTorrents   = "seedpay:torrents"
	keyCompleted  = "seedpay:torrents:completed"
	prefixTorrent = "seedpay:torrent:"
)

func keyUser(id string) string                 { return "seedpay:user:" + id }
func keyPasskey(pk string) string              { return "seedpay:passkey:" + pk }
func keyTorrent(ih bittorrent.InfoHash) string { return prefixTorrent + ih.String() }

// Store reads and writes the registry in Redis. It is safe for concurrent use.
type Store struct {
	rdb redis.UniversalClient
	now func() time.Time
}

// NewStore returns a Store on rdb.
func NewStore(rdb redis.UniversalClient) *Store {
	return &Store{rdb: rdb, now: time.Now}
}

// Redis returns the client the store uses (for health checks).
func (s *Store) Redis() redis.UniversalClient { return s.rdb }

// NewPasskey returns PasskeyLen random characters of [0-9A-Za-z].
func NewPasskey() (string, error) {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	out := make([]byte, 0, PasskeyLen)
	var buf [64]byte
	for len(out) < PasskeyLen {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", fmt.Errorf("passkey: %w", err)
		}
		for _, b := range buf {
			// 248 = 4*62: rejecting the top values keeps every character
			// equally likely.
			if b < 248 && len(out) < PasskeyLen {
				out = append(out, alphabet[b%62])
			}
		}
	}
	return string(out), nil
}

func newUserID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("user id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// claimPasskey reserves a fresh passkey for id; collisions are astronomically
// unlikely but a reservation with SET NX makes them impossible.
func (s *Store) claimPasskey(ctx context.Context, id string) (string, error) {
	for range 3 {
		pk, err := NewPasskey()
		if err != nil {
			return "", err
		}
		ok, err := s.rdb.SetNX(ctx, keyPasskey(pk), id, 0).Result()
		if err != nil {
			return "", fmt.Errorf("reserve passkey: %w", err)
		}
		if ok {
			return pk, nil
		}
	}
	return "", fmt.Errorf("reserve passkey: %w", ErrExists)
}

// CreateUser registers a user with a fresh passkey.
func (s *Store) CreateUser(ctx context.Context, name string) (User, error) {
	id, err := newUserID()
	if err != nil {
		return User{}, err
	}
	pk, err := s.claimPasskey(ctx, id)
	if err != nil {
		return User{}, err
	}
	u := User{ID: id, Name: name, Passkey: pk, CreatedAt: s.now().Unix()}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, keyUser(id), "name", u.Name, "passkey", pk, "banned", "0", "created", u.CreatedAt)
		p.SAdd(ctx, keyUsers, id)
		p.Publish(ctx, Channel, "u:"+id)
		return nil
	})
	if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// User returns the user with the given id.
func (s *Store) User(ctx context.Context, id string) (User, error) {
	m, err := s.rdb.HGetAll(ctx, keyUser(id)).Result()
	if err != nil {
		return User{}, fmt.Errorf("get user %s: %w", id, err)
	}
	return userFromHash(id, m)
}

func userFromHash(id string, m map[string]string) (User, error) {
	if len(m) == 0 {
		return User{}, fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	created, _ := strconv.ParseInt(m["created"], 10, 64)
	u := User{ID: id, Name: m["name"], Passkey: m["passkey"], Banned: m["banned"] == "1", CreatedAt: created}
	if len(u.Passkey) != PasskeyLen {
		return User{}, fmt.Errorf("user %s: stored passkey: %w", id, ErrInvalid)
	}
	return u, nil
}

// RotatePasskey gives the user a new passkey; the old one stops working on
// every instance as soon as the change is published. The user record is
// watched, so two concurrent rotations cannot both win.
func (s *Store) RotatePasskey(ctx context.Context, id string) (User, error) {
	var u User
	var pk string
	err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		m, err := tx.HGetAll(ctx, keyUser(id)).Result()
		if err != nil {
			return err
		}
		if u, err = userFromHash(id, m); err != nil {
			return err
		}
		if pk, err = s.claimPasskey(ctx, id); err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, keyUser(id), "passkey", pk)
			p.Del(ctx, keyPasskey(u.Passkey))
			p.Publish(ctx, Channel, "u:"+id)
			return nil
		})
		if err != nil {
			s.rdb.Del(ctx, keyPasskey(pk)) // release the unused reservation
		}
		return err
	}, keyUser(id))
	if err != nil {
		return User{}, fmt.Errorf("rotate passkey of %s: %w", id, err)
	}
	u.Passkey = pk
	return u, nil
}

// SetBanned bans or unbans a user.
func (s *Store) SetBanned(ctx context.Context, id string, banned bool) (User, error) {
	u, err := s.User(ctx, id)
	if err != nil {
		return User{}, err
	}
	v := "0"
	if banned {
		v = "1"
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, keyUser(id), "banned", v)
		p.Publish(ctx, Channel, "u:"+id)
		return nil
	})
	if err != nil {
		return User{}, fmt.Errorf("ban user: %w", err)
	}
	u.Banned = banned
	return u, nil
}

// PutTorrent registers a torrent. Registering an info_hash twice is ErrExists.
// The check and the write are one optimistic transaction (WATCH), so a crash
// or a concurrent registration never leaves half a torrent behind.
func (s *Store) PutTorrent(ctx context.Context, t Torrent) (Torrent, error) {
	if t.Size <= 0 {
		return Torrent{}, fmt.Errorf("torrent size %d: %w", t.Size, ErrInvalid)
	}
	t.CreatedAt = s.now().Unix()
	key := keyTorrent(t.InfoHash)
	err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		n, err := tx.Exists(ctx, key).Result()
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("torrent %s: %w", t.InfoHash, ErrExists)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, key, "name", t.Name, "size", t.Size, "created", t.CreatedAt)
			p.SAdd(ctx, keyTorrents, t.InfoHash.String())
			p.Publish(ctx, Channel, "t:"+t.InfoHash.String())
			return nil
		})
		return err
	}, key)
	switch {
	case errors.Is(err, ErrExists):
		return Torrent{}, err
	case errors.Is(err, redis.TxFailedErr):
		return Torrent{}, fmt.Errorf("torrent %s registered concurrently: %w", t.InfoHash, ErrExists)
	case err != nil:
		return Torrent{}, fmt.Errorf("put torrent: %w", err)
	}
	return t, nil
}

// Torrent returns a registered torrent.
func (s *Store) Torrent(ctx context.Context, ih bittorrent.InfoHash) (Torrent, error) {
	m, err := s.rdb.HGetAll(ctx, keyTorrent(ih)).Result()
	if err != nil {
		return Torrent{}, fmt.Errorf("get torrent %s: %w", ih, err)
	}
	return torrentFromHash(ih, m)
}

func torrentFromHash(ih bittorrent.InfoHash, m map[string]string) (Torrent, error) {
	if len(m) == 0 {
		return Torrent{}, fmt.Errorf("torrent %s: %w", ih, ErrNotFound)
	}
	size, err := strconv.ParseInt(m["size"], 10, 64)
	if err != nil || size <= 0 {
		return Torrent{}, fmt.Errorf("torrent %s: stored size %q: %w", ih, m["size"], ErrInvalid)
	}
	created, _ := strconv.ParseInt(m["created"], 10, 64)
	return Torrent{InfoHash: ih, Name: m["name"], Size: size, CreatedAt: created}, nil
}

// DeleteTorrent unregisters a torrent.
func (s *Store) DeleteTorrent(ctx context.Context, ih bittorrent.InfoHash) error {
	var srem *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		srem = p.SRem(ctx, keyTorrents, ih.String())
		p.Del(ctx, keyTorrent(ih))
		p.HDel(ctx, keyCompleted, ih.String())
		p.Publish(ctx, Channel, "t:"+ih.String())
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete torrent: %w", err)
	}
	if srem.Val() == 0 {
		return fmt.Errorf("torrent %s: %w", ih, ErrNotFound)
	}
	return nil
}

// Completed returns how many times each torrent was completed, by hex info_hash.
func (s *Store) Completed(ctx context.Context) (map[string]string, error) {
	m, err := s.rdb.HGetAll(ctx, keyCompleted).Result()
	if err != nil {
		return nil, fmt.Errorf("completed counts: %w", err)
	}
	return m, nil
}

// AddCompleted adds completion counts, by hex info_hash, in one round trip.
func (s *Store) AddCompleted(ctx context.Context, counts map[bittorrent.InfoHash]int64) error {
	if len(counts) == 0 {
		return nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for ih, n := range counts {
			p.HIncrBy(ctx, keyCompleted, ih.String(), n)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add completed: %w", err)
	}
	return nil
}

// ParseInfoHash decodes 40 hex characters.
func ParseInfoHash(s string) (bittorrent.InfoHash, error) {
	var ih bittorrent.InfoHash
	if len(s) != 40 {
		return ih, fmt.Errorf("info_hash must be 40 hex characters, got %d: %w", len(s), ErrInvalid)
	}
	if _, err := hex.Decode(ih[:], []byte(s)); err != nil {
		return ih, fmt.Errorf("info_hash is not hex: %w", ErrInvalid)
	}
	return ih, nil
}

// loadAll reads every hash whose id is in setKey, in pipelined batches, so a
// full reload of a million users is a thousand round trips, not a million.
func (s *Store) loadAll(ctx context.Context, setKey, prefix string) ([]string, []map[string]string, error) {
	ids, err := s.rdb.SMembers(ctx, setKey).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", setKey, err)
	}
	hashes := make([]map[string]string, 0, len(ids))
	for start := 0; start < len(ids); start += 1000 {
		batch := ids[start:min(start+1000, len(ids))]
		cmds := make([]*redis.MapStringStringCmd, len(batch))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range batch {
				cmds[i] = p.HGetAll(ctx, prefix+id)
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("load %s: %w", setKey, err)
		}
		for _, c := range cmds {
			hashes = append(hashes, c.Val())
		}
	}
	return ids, hashes, nil
}

func (s *Store) allUsers(ctx context.Context) ([]User, error) {
	ids, hashes, err := s.loadAll(ctx, keyUsers, keyUser(""))
	if err != nil {
		return nil, err
	}
	out := make([]User, 0, len(ids))
	for i, id := range ids {
		if u, err := userFromHash(id, hashes[i]); err == nil {
			out = append(out, u)
		}
	}
	return out, nil
}

func (s *Store) allTorrents(ctx context.Context) ([]Torrent, error) {
	ids, hashes, err := s.loadAll(ctx, keyTorrents, prefixTorrent)
	if err != nil {
		return nil, err
	}
	out := make([]Torrent, 0, len(ids))
	for i, h := range ids {
		ih, err := ParseInfoHash(h)
		if err != nil {
			continue
		}
		if t, err := torrentFromHash(ih, hashes[i]); err == nil {
			out = append(out, t)
		}
	}
	return out, nil
}
