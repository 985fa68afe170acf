package registry

import (
	"context"
	"testing"

	"github.com/chihaya/chihaya/bittorrent"

	"github.com/seedpay/seedpay/internal/reqctx"
)

func TestEntryInContext(t *testing.T) {
	a := &Entry{Torrent: Torrent{InfoHash: bittorrent.InfoHashFromString("aaaaaaaaaaaaaaaaaaaa")}}
	b := bittorrent.InfoHashFromString("bbbbbbbbbbbbbbbbbbbb")
	if _, ok := EntryFromContext(context.Background(), a.InfoHash); ok {
		t.Fatal("an entry in an empty context")
	}
	var rc reqctx.Ctx
	rc.Reset(context.Background())
	for _, ctx := range []context.Context{WithEntry(context.Background(), a), WithEntry(&rc, a)} {
		if e, ok := EntryFromContext(ctx, a.InfoHash); !ok || e != a {
			t.Fatalf("EntryFromContext = %v, %v; want the entry", e, ok)
		}
		if _, ok := EntryFromContext(ctx, b); ok {
			t.Fatal("the entry of another info hash was returned")
		}
	}
	if ctx := WithEntry(&rc, a); ctx != &rc {
		t.Fatal("WithEntry on a reqctx.Ctx did not store in place")
	}
}
