package rewards

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Ledger is the read side of the reward ledger, for the API and the CLI.
type Ledger struct {
	rdb redis.UniversalClient
	cfg Config
	now func() time.Time
}

// NewLedger returns a reader over rdb.
func NewLedger(rdb redis.UniversalClient, cfg Config) *Ledger {
	return &Ledger{rdb: rdb, cfg: cfg, now: time.Now}
}

// Epoch states.
const (
	StateOpen     = "open"     // still accounting
	StateSettling = "settling" // ended; sealed once its grace has passed
	StateSealed   = "sealed"
)

// EpochView is one epoch as the API shows it. Sealed epochs carry their
// record; open ones carry live totals.
type EpochView struct {
	Epoch       int64        `json:"epoch"`
	State       string       `json:"state"`
	Start       int64        `json:"start"`
	End         int64        `json:"end"`
	Root        string       `json:"root,omitempty"`
	Users       int          `json:"users"`
	TotalPoints string       `json:"total_points"`
	Credited    string       `json:"total_credited"`
	Pools       []PoolRecord `json:"pools,omitempty"`
	UserLines   []UserRecord `json:"user_lines,omitempty"`
}

// Current is the epoch containing now.
func (l *Ledger) Current() int64 { return l.cfg.Epoch.EpochOf(l.now().Unix()) }

// First is the first epoch of this ledger (the current one if none yet).
func (l *Ledger) First(ctx context.Context) (int64, error) {
	n, err := l.rdb.Get(ctx, KeyFirstEpoch).Int64()
	if errors.Is(err, redis.Nil) {
		return l.Current(), nil
	}
	return n, err
}

// Epoch returns epoch n; withUsers includes every user line of a sealed one.
func (l *Ledger) Epoch(ctx context.Context, n int64, withUsers bool) (EpochView, error) {
	v := EpochView{Epoch: n, Start: l.cfg.Epoch.Start(n), End: l.cfg.Epoch.Start(n + 1)}
	rec, err := LoadRecord(ctx, l.rdb, n)
	switch {
	case err == nil:
		v.State, v.Root, v.Users = StateSealed, rec.Root, len(rec.Users)
		v.TotalPoints, v.Credited, v.Pools = rec.TotalPoints, rec.TotalCredited, rec.Pools
		if withUsers {
			v.UserLines = rec.Users
		}
		return v, nil
	case !errors.Is(err, ErrNotSealed):
		return v, err
	}
	if n > l.Current() {
		return v, fmt.Errorf("epoch %d has not started: %w", n, ErrNotSealed)
	}
	v.State = StateOpen
	if n < l.Current() {
		v.State = StateSettling
	}
	users, err := l.rdb.SMembers(ctx, KeyEpochUsers(n)).Result()
	if err != nil {
		return v, err
	}
	hashes, err := loadUserEpochs(ctx, l.rdb, users, n)
	if err != nil {
		return v, err
	}
	total := new(big.Int)
	for _, h := range hashes {
		for _, val := range poolPoints(h) {
			if p, ok := new(big.Int).SetString(val, 10); ok {
				total.Add(total, p)
			}
		}
	}
	v.Users, v.TotalPoints, v.Credited = len(users), total.String(), "0"
	return v, nil
}

// Epochs lists epochs newest first, starting below before (0: from the
// current epoch), at most limit of them, never older than the first.
func (l *Ledger) Epochs(ctx context.Context, before int64, limit int) ([]EpochView, error) {
	first, err := l.First(ctx)
	if err != nil {
		return nil, err
	}
	top := l.Current()
	if before != 0 && before-1 < top {
		top = before - 1
	}
	var out []EpochView
	for n := top; n >= first && len(out) < limit; n-- {
		v, err := l.Epoch(ctx, n, false)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Proof returns the Merkle proof of user's line in sealed epoch n.
func (l *Ledger) Proof(ctx context.Context, n int64, user string) (Proof, error) {
	rec, err := LoadRecord(ctx, l.rdb, n)
	if err != nil {
		return Proof{}, err
	}
	leaves := make([][32]byte, len(rec.Users))
	idx := -1
	var amount *big.Int
	for i, u := range rec.Users {
		a, ok := new(big.Int).SetString(u.Amount, 10)
		if !ok {
			return Proof{}, fmt.Errorf("record %d: amount %q", n, u.Amount)
		}
		leaves[i] = Leaf(n, u.User, u.Address, a)
		if u.User == user {
			idx, amount = i, a
		}
	}
	if idx < 0 {
		return Proof{}, fmt.Errorf("user %s in epoch %d: %w", user, n, ErrNoUser)
	}
	p, ok := NewTree(leaves).ProofFor(n, user, rec.Users[idx].Address, amount)
	if !ok {
		return Proof{}, fmt.Errorf("no proof for %s in epoch %d", user, n)
	}
	return p, nil
}

// UserEpoch is one epoch of one user's rewards.
type UserEpoch struct {
	Epoch       int64             `json:"epoch"`
	State       string            `json:"state"`
	SeedSeconds int64             `json:"seed_seconds"`
	Points      map[string]string `json:"points"`
	Credit      string            `json:"credit"` // base units; "0" until sealed
}

// UserRewards is a user's balance and recent epochs, newest first.
type UserRewards struct {
	User    string      `json:"user"`
	Balance string      `json:"balance"`
	Epochs  []UserEpoch `json:"epochs"`
}

// UserRewards returns the balance and every epoch the user was credited in
// or has points in among the epochs not yet sealed.
func (l *Ledger) UserRewards(ctx context.Context, user string) (UserRewards, error) {
	bal, err := readBalance(ctx, l.rdb, user)
	if err != nil {
		return UserRewards{}, err
	}
	credits, err := l.rdb.HGetAll(ctx, KeyCredits(user)).Result()
	if err != nil {
		return UserRewards{}, err
	}
	epochs := map[int64]bool{}
	for f := range credits {
		if n, err := strconv.ParseInt(f, 10, 64); err == nil {
			epochs[n] = true
		}
	}
	// Unsealed epochs that may still hold points: from the settler's next
	// epoch (or the first) to now, at most a few.
	cur := l.Current()
	for n := cur; n >= cur-3; n-- {
		epochs[n] = true
	}
	list := make([]int64, 0, len(epochs))
	for n := range epochs {
		list = append(list, n)
	}
	slices.Sort(list)
	slices.Reverse(list)
	out := UserRewards{User: user, Balance: bal.String()}
	for _, n := range list {
		h, err := l.rdb.HGetAll(ctx, KeyUserEpoch(user, n)).Result()
		if err != nil {
			return UserRewards{}, err
		}
		credit, credited := credits[strconv.FormatInt(n, 10)]
		if len(h) == 0 && !credited {
			continue
		}
		e := UserEpoch{Epoch: n, Points: poolPoints(h), Credit: "0"}
		e.SeedSeconds, _ = strconv.ParseInt(h["seed_s"], 10, 64)
		if credited {
			e.Credit = credit
		}
		e.State = StateOpen
		switch sealed, err := l.rdb.Exists(ctx, KeyEpochRecord(n)).Result(); {
		case err != nil:
			return UserRewards{}, err
		case sealed == 1:
			e.State = StateSealed
		case n < cur:
			e.State = StateSettling
		}
		out.Epochs = append(out.Epochs, e)
	}
	return out, nil
}
