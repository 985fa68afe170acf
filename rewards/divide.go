package rewards

import (
	"cmp"
	"errors"
	"fmt"
	"math/big"
	"slices"
)

// Share is one user's claim on a pool's epoch budget: its integer points
// (micro-points) for the epoch. Points must be non-negative.
type Share struct {
	User   string
	Points *big.Int
}

// Credit is the token amount (base units) one user is credited for an epoch.
type Credit struct {
	User   string
	Amount *big.Int
}

// Divide splits budget (token base units) among shares in proportion to
// their points, exactly, by the largest-remainder method:
//
//  1. total = sum of points. If total is 0, nothing is assigned: credits is
//     empty and dust is the whole budget.
//  2. Every user with points p > 0 gets floor(budget*p/total), and keeps the
//     remainder r = budget*p mod total.
//  3. What is left, R = budget - sum of the floors, is always less than the
//     number of users with r > 0; it is handed out one base unit each to the
//     R users with the largest r, ties broken by user id ascending (Go
//     string order, i.e. bytewise).
//
// So every amount is within one base unit of the exact rational share
// (|amount*total - budget*p| < total), the amounts sum to the budget, and
// the result depends only on the set of shares, never on their order.
//
// Users with zero points are omitted; users with positive points whose
// share rounds to 0 are kept, with Amount 0. Credits are sorted by user id
// ascending. dust is the budget when total is 0, otherwise 0; it carries to
// the next epoch. Every returned *big.Int is freshly allocated, and neither
// budget nor shares are modified.
//
// A nil or negative budget, a nil or negative Points, an empty user id or a
// user id that occurs twice is an error, and nothing is returned.
func Divide(budget *big.Int, shares []Share) (credits []Credit, dust *big.Int, err error) {
	if budget == nil {
		return nil, nil, errors.New("rewards: divide: nil budget")
	}
	if budget.Sign() < 0 {
		return nil, nil, fmt.Errorf("rewards: divide: negative budget %s", budget)
	}
	seen := make(map[string]struct{}, len(shares))
	total := new(big.Int)
	positive := 0
	for _, s := range shares {
		if s.User == "" {
			return nil, nil, errors.New("rewards: divide: empty user id")
		}
		if _, dup := seen[s.User]; dup {
			return nil, nil, fmt.Errorf("rewards: divide: duplicate user id %q", s.User)
		}
		seen[s.User] = struct{}{}
		if s.Points == nil {
			return nil, nil, fmt.Errorf("rewards: divide: user %q: nil points", s.User)
		}
		switch s.Points.Sign() {
		case -1:
			return nil, nil, fmt.Errorf("rewards: divide: user %q: negative points %s", s.User, s.Points)
		case 1:
			total.Add(total, s.Points)
			positive++
		}
	}
	if total.Sign() == 0 {
		return []Credit{}, new(big.Int).Set(budget), nil
	}

	type part struct {
		user   string
		amount *big.Int // floor(budget*p/total), then +1 if picked
		rem    *big.Int // budget*p mod total
	}
	parts := make([]part, 0, positive)
	left := new(big.Int).Set(budget) // budget - sum of floors
	for _, s := range shares {
		if s.Points.Sign() == 0 {
			continue
		}
		q, r := new(big.Int), new(big.Int)
		q.QuoRem(new(big.Int).Mul(budget, s.Points), total, r)
		left.Sub(left, q)
		parts = append(parts, part{user: s.User, amount: q, rem: r})
	}

	// sum(r) = left*total and every r < total, so more than left users have
	// r > 0: left < len(parts), it fits an int, and a user with r == 0 never
	// gets a unit. The check below cannot fail; it guards the arithmetic.
	if left.Cmp(big.NewInt(int64(len(parts)))) >= 0 {
		return nil, nil, fmt.Errorf("rewards: divide: internal error: remainder %s with %d users", left, len(parts))
	}
	if left.Sign() > 0 {
		slices.SortFunc(parts, func(a, b part) int {
			if c := b.rem.Cmp(a.rem); c != 0 {
				return c // larger remainder first
			}
			return cmp.Compare(a.user, b.user)
		})
		n := int(left.Int64())
		one := big.NewInt(1)
		for i := range n {
			parts[i].amount.Add(parts[i].amount, one)
		}
	}

	slices.SortFunc(parts, func(a, b part) int { return cmp.Compare(a.user, b.user) })
	credits = make([]Credit, len(parts))
	for i, p := range parts {
		credits[i] = Credit{User: p.user, Amount: p.amount}
	}
	return credits, new(big.Int), nil
}
