package reqctx

import (
	"context"
	"testing"
	"time"
)

type k1 struct{}
type k2 struct{}
type parentKey struct{}

func TestWithInPlaceAndFallback(t *testing.T) {
	parent, cancel := context.WithTimeout(context.WithValue(context.Background(), parentKey{}, "p"), time.Hour)
	defer cancel()
	var c Ctx
	c.Reset(parent)
	if got := With(&c, k1{}, 1); got != context.Context(&c) {
		t.Fatal("With on a Ctx with room did not store in place")
	}
	With(&c, k1{}, 2) // overwrite, no new slot
	if c.Value(k1{}) != 2 || c.Value(k2{}) != nil || c.Value(parentKey{}) != "p" {
		t.Fatalf("values %v %v %v", c.Value(k1{}), c.Value(k2{}), c.Value(parentKey{}))
	}
	if _, ok := c.Deadline(); !ok || c.Done() == nil || c.Err() != nil {
		t.Fatal("deadline and cancellation not delegated")
	}
	var ctx context.Context = &c
	for i := range slots + 2 {
		ctx = With(ctx, i, i*10)
	}
	for i := range slots + 2 {
		if ctx.Value(i) != i*10 {
			t.Fatalf("value %d = %v", i, ctx.Value(i))
		}
	}
	c.Reset(context.Background())
	if c.Value(k1{}) != nil || c.Value(0) != nil {
		t.Fatal("Reset kept values")
	}
	// A plain context gets context.WithValue.
	if v := With(context.Background(), k2{}, "x").Value(k2{}); v != "x" {
		t.Fatalf("fallback value %v", v)
	}
}

func BenchmarkWith(b *testing.B) {
	var c Ctx
	b.ReportAllocs()
	for range b.N {
		c.Reset(context.Background())
		ctx := With(&c, k1{}, &c)
		ctx = With(ctx, k2{}, true)
		if ctx.Value(k1{}) == nil {
			b.Fatal("lost")
		}
	}
}
