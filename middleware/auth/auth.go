// Package auth is the PreHook that makes the tracker private: every request
// carries a passkey of a registered, unbanned user; in private mode only
// registered torrents are tracked; optionally only whitelisted clients.
package auth

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedpay/seedpay/internal/reqctx"
	"github.com/seedpay/seedpay/middleware/registry"
)

// The failure reasons a client sees; each names what to do about it.
var (
	ErrMissingPasskey   = bittorrent.ClientError("missing passkey: use your personal announce URL")
	ErrUnknownPasskey   = bittorrent.ClientError("unknown passkey: copy the announce URL from your profile again")
	ErrBanned           = bittorrent.ClientError("account disabled: contact the staff")
	ErrUnregistered     = bittorrent.ClientError("torrent not registered with this tracker")
	ErrClientNotAllowed = bittorrent.ClientError("client not allowed: see the tracker's list of approved clients")
)

// Lookup is what the hook needs of the registry cache.
type Lookup interface {
	UserByPasskey(passkey string) (*registry.User, bool)
	Torrent(ih bittorrent.InfoHash) (*registry.Entry, bool)
}

// Config holds the hook's policy.
type Config struct {
	// Private tracks only registered torrents.
	Private bool `yaml:"private"`
	// ClientWhitelist lists allowed peer_id prefixes (e.g. "-qB", "-TR");
	// empty allows every client.
	ClientWhitelist []string `yaml:"client_whitelist"`
}

// Validate rejects prefixes no peer_id can have.
func (c Config) Validate() error {
	for i, p := range c.ClientWhitelist {
		if p == "" || len(p) > 20 {
			return fmt.Errorf("client_whitelist[%d]: %q must be 1..20 bytes of a peer_id prefix", i, p)
		}
	}
	return nil
}

type ctxKey struct{}

// UserFromContext returns the user the hook authenticated for this request.
func UserFromContext(ctx context.Context) (*registry.User, bool) {
	u, ok := ctx.Value(ctxKey{}).(*registry.User)
	return u, ok
}

// Hook is the passkey/private/whitelist PreHook.
type Hook struct {
	cfg      Config
	clients  [][]byte
	lookup   Lookup
	rejected *prometheus.CounterVec
}

var _ middleware.Hook = (*Hook)(nil)

// New returns the hook; rejections are counted on reg by reason.
func New(cfg Config, lookup Lookup, reg prometheus.Registerer) (*Hook, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "seedpay", Subsystem: "auth", Name: "rejected_total",
		Help: "Requests refused by the auth hook, by reason.",
	}, []string{"reason"})
	if err := reg.Register(rejected); err != nil {
		return nil, err
	}
	h := &Hook{cfg: cfg, lookup: lookup, rejected: rejected}
	for _, p := range cfg.ClientWhitelist {
		h.clients = append(h.clients, []byte(p))
	}
	return h, nil
}

// Passkey finds the passkey of a request: the HTTP route parameter, or the
// path of BEP 41 URL data on UDP ("/<passkey>", also "/announce/<passkey>").
func Passkey(ctx context.Context, params bittorrent.Params) string {
	if rp, ok := ctx.Value(bittorrent.RouteParamsKey).(bittorrent.RouteParams); ok {
		if pk := rp.ByName("passkey"); pk != "" {
			return pk
		}
	}
	if params == nil {
		return ""
	}
	path := strings.TrimPrefix(params.RawPath(), "/")
	path = strings.TrimPrefix(path, "announce/")
	path = strings.TrimPrefix(path, "scrape/")
	return strings.TrimSuffix(path, "/")
}

func (h *Hook) user(ctx context.Context, params bittorrent.Params) (*registry.User, error) {
	pk := Passkey(ctx, params)
	if pk == "" {
		return nil, h.reject("missing_passkey", ErrMissingPasskey)
	}
	u, ok := h.lookup.UserByPasskey(pk)
	if !ok {
		return nil, h.reject("unknown_passkey", ErrUnknownPasskey)
	}
	if u.Banned {
		return nil, h.reject("banned", ErrBanned)
	}
	return u, nil
}

func (h *Hook) reject(reason string, err error) error {
	h.rejected.WithLabelValues(reason).Inc()
	return err
}

// HandleAnnounce authenticates the announce and stores the user in ctx.
func (h *Hook) HandleAnnounce(ctx context.Context, req *bittorrent.AnnounceRequest, _ *bittorrent.AnnounceResponse) (context.Context, error) {
	u, err := h.user(ctx, req.Params)
	if err != nil {
		return ctx, err
	}
	var t *registry.Entry
	if h.cfg.Private {
		var ok bool
		if t, ok = h.lookup.Torrent(req.InfoHash); !ok {
			return ctx, h.reject("unregistered_torrent", ErrUnregistered)
		}
	}
	if len(h.clients) > 0 && !h.allowedClient(req.Peer.ID) {
		return ctx, h.reject("client_not_allowed", ErrClientNotAllowed)
	}
	if t != nil {
		// Later hooks (accounting) read the torrent from here instead of
		// looking it up again.
		ctx = registry.WithEntry(ctx, t)
	}
	return reqctx.With(ctx, ctxKey{}, u), nil
}

func (h *Hook) allowedClient(id bittorrent.PeerID) bool {
	for _, p := range h.clients {
		if bytes.HasPrefix(id[:], p) {
			return true
		}
	}
	return false
}

// HandleScrape authenticates the scrape. Unregistered info hashes are not an
// error: they simply have no swarm, so they scrape as zeros.
func (h *Hook) HandleScrape(ctx context.Context, req *bittorrent.ScrapeRequest, _ *bittorrent.ScrapeResponse) (context.Context, error) {
	u, err := h.user(ctx, req.Params)
	if err != nil {
		return ctx, err
	}
	return reqctx.With(ctx, ctxKey{}, u), nil
}
