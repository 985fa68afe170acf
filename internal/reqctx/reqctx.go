// Package reqctx is a reusable request context: hooks that store a value per
// request (the authenticated user, skip flags) write it into the context in
// place instead of wrapping it with context.WithValue, which allocates. The
// tracker's frontends keep one Ctx per worker, so the UDP announce path runs
// every hook without allocating.
package reqctx

import (
	"context"
	"time"
)

// slots is how many values one request can carry in place; more fall back
// to context.WithValue.
const slots = 6

// Ctx is a context.Context whose values live in a fixed array. It is not
// safe for concurrent use: one request owns it from Reset to the end of its
// last hook, and nothing may keep it (or values read from it) afterwards.
type Ctx struct {
	parent context.Context
	n      int
	keys   [slots]any
	vals   [slots]any
}

// Reset empties c and makes parent the context it delegates to (deadline,
// cancellation, and values it does not hold itself).
func (c *Ctx) Reset(parent context.Context) {
	for i := range c.n {
		c.keys[i], c.vals[i] = nil, nil
	}
	c.n = 0
	c.parent = parent
}

// Deadline implements context.Context.
func (c *Ctx) Deadline() (time.Time, bool) { return c.parent.Deadline() }

// Done implements context.Context.
func (c *Ctx) Done() <-chan struct{} { return c.parent.Done() }

// Err implements context.Context.
func (c *Ctx) Err() error { return c.parent.Err() }

// Value implements context.Context: the latest value stored for key, else
// the parent's.
func (c *Ctx) Value(key any) any {
	for i := c.n - 1; i >= 0; i-- {
		if c.keys[i] == key {
			return c.vals[i]
		}
	}
	return c.parent.Value(key)
}

// set stores key=val in place; false when full.
func (c *Ctx) set(key, val any) bool {
	for i := range c.n {
		if c.keys[i] == key {
			c.vals[i] = val
			return true
		}
	}
	if c.n == slots {
		return false
	}
	c.keys[c.n], c.vals[c.n] = key, val
	c.n++
	return true
}

// With returns ctx carrying key=val. When ctx is a *Ctx with room the value
// is stored in place and ctx itself is returned; otherwise it is
// context.WithValue(ctx, key, val). Hooks call it instead of
// context.WithValue.
func With(ctx context.Context, key, val any) context.Context {
	if c, ok := ctx.(*Ctx); ok && c.set(key, val) {
		return c
	}
	return context.WithValue(ctx, key, val)
}
