package api

import (
	"context"
	"strings"
	"testing"
)

// TestPoolListBuildPanic: the list is built in its own goroutine, outside
// the handlers' panic recovery; a panic there is the waiters' error, and
// the next call builds again.
func TestPoolListBuildPanic(t *testing.T) {
	c := newPoolListCache()
	_, err := c.get(context.Background(), func(context.Context) ([]PublicPool, error) { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("panicking build: %v, want its error", err)
	}
	l, err := c.get(context.Background(), func(context.Context) ([]PublicPool, error) { return []PublicPool{{ID: "p1"}}, nil })
	if err != nil || len(l) != 1 || l[0].ID != "p1" {
		t.Fatalf("next build: %v, %v", l, err)
	}
}
