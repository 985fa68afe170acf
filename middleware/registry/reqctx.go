package registry

import (
	"context"

	"github.com/chihaya/chihaya/bittorrent"

	"github.com/seedpay/seedpay/internal/reqctx"
)

type entryKey struct{}

// WithEntry returns ctx carrying e, the registered torrent of the request,
// so later hooks of the same announce need not look it up again (auth looks
// it up in private mode; the accounting hook reads it back). With the
// frontends' reusable context it is stored in place: no allocation.
func WithEntry(ctx context.Context, e *Entry) context.Context {
	return reqctx.With(ctx, entryKey{}, e)
}

// EntryFromContext returns the entry an earlier hook stored with WithEntry
// for info hash ih; false when none was stored (or it is another torrent's),
// and the caller then looks the torrent up itself.
func EntryFromContext(ctx context.Context, ih bittorrent.InfoHash) (*Entry, bool) {
	e, _ := ctx.Value(entryKey{}).(*Entry)
	if e == nil || e.InfoHash != ih {
		return nil, false
	}
	return e, true
}
