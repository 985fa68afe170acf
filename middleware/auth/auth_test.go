package auth

import (
	"context"
	"errors"
	"testing"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedpay/seedpay/middleware/registry"
)

type lookup struct {
	users    map[string]*registry.User
	torrents map[bittorrent.InfoHash]*registry.Entry
}

func (l lookup) UserByPasskey(pk string) (*registry.User, bool) { u, ok := l.users[pk]; return u, ok }
func (l lookup) Torrent(ih bittorrent.InfoHash) (*registry.Entry, bool) {
	e, ok := l.torrents[ih]
	return e, ok
}

func params(t *testing.T, urlData string) bittorrent.Params {
	t.Helper()
	p, err := bittorrent.ParseURLData(urlData)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPasskey(t *testing.T) {
	route := context.WithValue(context.Background(), bittorrent.RouteParamsKey, bittorrent.RouteParams{{Key: "passkey", Value: "fromroute"}})
	tests := []struct {
		name    string
		ctx     context.Context
		urlData string
		want    string
	}{
		{"http route param wins", route, "/other", "fromroute"},
		{"udp url data", context.Background(), "/abc", "abc"},
		{"udp url data with query", context.Background(), "/abc?x=1", "abc"},
		{"udp announce-style path", context.Background(), "/announce/abc", "abc"},
		{"trailing slash", context.Background(), "/abc/", "abc"},
		{"none", context.Background(), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Passkey(tt.ctx, params(t, tt.urlData)); got != tt.want {
				t.Errorf("Passkey = %q, want %q", got, tt.want)
			}
		})
	}
	if got := Passkey(context.Background(), nil); got != "" {
		t.Errorf("nil params: %q", got)
	}
}

func TestHookAnnounce(t *testing.T) {
	ih := bittorrent.InfoHashFromString("iiiiiiiiiiiiiiiiiiii")
	other := bittorrent.InfoHashFromString("oooooooooooooooooooo")
	l := lookup{
		users: map[string]*registry.User{
			"good":   {ID: "1", Passkey: "good"},
			"banned": {ID: "2", Passkey: "banned", Banned: true},
		},
		torrents: map[bittorrent.InfoHash]*registry.Entry{ih: {}},
	}
	qb := bittorrent.PeerIDFromString("-qB4500-aaaaaaaaaaaa")
	xx := bittorrent.PeerIDFromString("-XX0100-aaaaaaaaaaaa")
	tests := []struct {
		name    string
		cfg     Config
		urlData string
		ih      bittorrent.InfoHash
		peer    bittorrent.PeerID
		want    error
		reason  string
	}{
		{"ok", Config{Private: true}, "/good", ih, qb, nil, ""},
		{"missing passkey", Config{}, "", ih, qb, ErrMissingPasskey, "missing_passkey"},
		{"unknown passkey", Config{}, "/nope", ih, qb, ErrUnknownPasskey, "unknown_passkey"},
		{"banned", Config{}, "/banned", ih, qb, ErrBanned, "banned"},
		{"private refuses unregistered", Config{Private: true}, "/good", other, qb, ErrUnregistered, "unregistered_torrent"},
		{"public tracks unregistered", Config{Private: false}, "/good", other, qb, nil, ""},
		{"whitelisted client", Config{ClientWhitelist: []string{"-TR", "-qB"}}, "/good", ih, qb, nil, ""},
		{"client not whitelisted", Config{ClientWhitelist: []string{"-TR", "-qB"}}, "/good", ih, xx, ErrClientNotAllowed, "client_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			h, err := New(tt.cfg, l, reg)
			if err != nil {
				t.Fatal(err)
			}
			req := &bittorrent.AnnounceRequest{InfoHash: tt.ih, Peer: bittorrent.Peer{ID: tt.peer}, Params: params(t, tt.urlData)}
			ctx, err := h.HandleAnnounce(context.Background(), req, &bittorrent.AnnounceResponse{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			var ce bittorrent.ClientError
			if err != nil && !errors.As(err, &ce) {
				t.Fatalf("%v is not a ClientError: the client would not see the reason", err)
			}
			u, ok := UserFromContext(ctx)
			if tt.want == nil && (!ok || u.Passkey != "good") {
				t.Fatalf("user in context %v, %v", u, ok)
			}
			if tt.want != nil && ok {
				t.Fatal("refused request carries a user")
			}
			if tt.reason != "" {
				if n := testCount(t, reg, tt.reason); n != 1 {
					t.Fatalf("rejected{reason=%s} = %v, want 1", tt.reason, n)
				}
			}
		})
	}
}

func TestHookScrape(t *testing.T) {
	h, err := New(Config{Private: true}, lookup{users: map[string]*registry.User{"good": {ID: "1", Passkey: "good"}}}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	unregistered := bittorrent.InfoHashFromString("uuuuuuuuuuuuuuuuuuuu")
	for _, tc := range []struct {
		urlData string
		want    error
	}{{"/good", nil}, {"/bad", ErrUnknownPasskey}, {"", ErrMissingPasskey}} {
		req := &bittorrent.ScrapeRequest{InfoHashes: []bittorrent.InfoHash{unregistered}, Params: params(t, tc.urlData)}
		if _, err := h.HandleScrape(context.Background(), req, &bittorrent.ScrapeResponse{}); !errors.Is(err, tc.want) {
			t.Errorf("scrape %q: %v, want %v", tc.urlData, err, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, bad := range [][]string{{""}, {"-qB", "123456789012345678901"}} {
		if err := (Config{ClientWhitelist: bad}).Validate(); err == nil {
			t.Errorf("whitelist %q accepted", bad)
		}
	}
	if _, err := New(Config{ClientWhitelist: []string{""}}, lookup{}, prometheus.NewRegistry()); err == nil {
		t.Error("New accepted an invalid config")
	}
}

func testCount(t *testing.T, g prometheus.Gatherer, reason string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "reason" && lp.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
