package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/seedpay/seedpay/middleware/registry"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		token string
		ok    bool
		want  string
	}{
		{"empty", "", false, "must be set"},
		{"short", "0123456789a", false, "at least 12"},
		{"dev default", "dev-admin-token", true, ""},
		{"exactly 16", "0123456789abcdef", true, ""},
		{"long", strings.Repeat("x", 200), true, ""},
		{"space inside", "0123456789 abcdef", false, "printable ASCII"},
		{"trailing newline", "0123456789abcdef\n", false, "printable ASCII"},
		{"non-ASCII", "0123456789abcdefé", false, "printable ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Config{AdminToken: tt.token}.Validate()
			if tt.ok {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate = %v, want ErrConfig", err)
			}
			if !strings.Contains(err.Error(), "admin_token") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q should name admin_token and say %q", err, tt.want)
			}
			if tt.token != "" && strings.Contains(err.Error(), tt.token) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}

func TestNewRequiresDeps(t *testing.T) {
	store := registry.NewStore(nil)
	cache, err := registry.NewCache(store, registry.CacheConfig{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	full := Deps{Store: store, Cache: cache, Swarms: &fakeSwarms{}, Gatherer: prometheus.NewRegistry()}
	tests := []struct {
		name   string
		cfg    Config
		mutate func(*Deps)
		want   string
	}{
		{"ok, nil logger", Config{AdminToken: testToken}, func(*Deps) {}, ""},
		{"bad token", Config{AdminToken: "short"}, func(*Deps) {}, "admin_token"},
		{"no store", Config{AdminToken: testToken}, func(d *Deps) { d.Store = nil }, "Store"},
		{"no cache", Config{AdminToken: testToken}, func(d *Deps) { d.Cache = nil }, "Cache"},
		{"no swarms", Config{AdminToken: testToken}, func(d *Deps) { d.Swarms = nil }, "Swarms"},
		{"no gatherer", Config{AdminToken: testToken}, func(d *Deps) { d.Gatherer = nil }, "Gatherer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := full
			tt.mutate(&d)
			s, err := New(tt.cfg, d)
			if tt.want == "" {
				if err != nil || s == nil || s.Handler() == nil {
					t.Fatalf("New = %v, %v", s, err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want ErrConfig naming %s", err, tt.want)
			}
		})
	}
}

// adminRoutes is one request per admin route, all well formed.
var adminRoutes = []struct{ method, path, body string }{
	{"POST", "/api/v1/users", `{"name":"mallory"}`},
	{"GET", "/api/v1/users/0123456789abcdef", ""},
	{"POST", "/api/v1/users/0123456789abcdef/passkey", ""},
	{"POST", "/api/v1/users/0123456789abcdef/ban", ""},
	{"POST", "/api/v1/users/0123456789abcdef/unban", ""},
	{"POST", "/api/v1/torrents", `{"info_hash":"` + strings.Repeat("ab", 20) + `","size":1,"name":"x"}`},
	{"GET", "/api/v1/torrents/" + strings.Repeat("ab", 20), ""},
	{"DELETE", "/api/v1/torrents/" + strings.Repeat("ab", 20), ""},
	{"GET", "/api/v1/no-such-route", ""},
	{"PUT", "/api/v1/users", ""},
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	auths := []struct {
		name, header, want string
	}{
		{"missing", "", "missing bearer token"},
		{"wrong token", "Bearer wrong-token-wrong-token-wrong", "invalid bearer token"},
		{"token prefix", "Bearer " + testToken[:16], "invalid bearer token"},
		{"token plus one", "Bearer " + testToken + "x", "invalid bearer token"},
		{"empty token", "Bearer ", "invalid bearer token"},
		{"bare scheme", "Bearer", "invalid bearer token"},
		{"basic scheme", "Basic " + testToken, "must be Bearer"},
		{"token without scheme", testToken, "must be Bearer"},
		{"double space", "Bearer  " + testToken, "invalid bearer token"},
	}
	for _, rt := range adminRoutes {
		for _, a := range auths {
			t.Run(rt.method+" "+rt.path+"/"+a.name, func(t *testing.T) {
				rec := e.doAuth(rt.method, rt.path, rt.body, a.header)
				wantError(t, rec, http.StatusUnauthorized, a.want)
				if got := rec.Header().Get("WWW-Authenticate"); got != "Bearer" {
					t.Errorf("WWW-Authenticate = %q, want Bearer", got)
				}
			})
		}
	}
	// Nothing was written by the rejected requests.
	e.reload()
	if users, torrents := e.cache.Counts(); users != 0 || torrents != 0 {
		t.Errorf("unauthorized requests created %d users, %d torrents", users, torrents)
	}
	t.Run("scheme is case-insensitive", func(t *testing.T) {
		rec := e.doAuth("POST", "/api/v1/users", `{"name":"a"}`, "bearer "+testToken)
		if rec.Code != http.StatusCreated {
			t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	})
	t.Run("no secrets in the log", func(t *testing.T) {
		text := e.logText()
		if strings.Contains(text, testToken[:16]) || strings.Contains(text, "wrong-token") {
			t.Errorf("log contains a token:\n%s", text)
		}
		if n := e.logs.FilterMessage("admin request unauthorized").Len(); n != len(adminRoutes)*len(auths) {
			t.Errorf("%d unauthorized log lines, want %d", n, len(adminRoutes)*len(auths))
		}
	})
}

func TestCreateUser(t *testing.T) {
	e := newEnv(t)
	tests := []struct{ name, input string }{
		{"ascii", "alice"},
		{"one char", "a"},
		{"64 chars", strings.Repeat("b", 64)},
		{"64 runes of multibyte", strings.Repeat("é", 64)},
		{"spaces and punctuation", "Bob the Builder! (#2)"},
		{"non-latin", "日本語のユーザー"},
		{"emoji", "🦀 crab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now().Unix()
			rec := e.do("POST", "/api/v1/users", `{"name":`+jsonString(tt.input)+`}`)
			if rec.Code != http.StatusCreated {
				t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
			}
			wantKeys(t, rec, "id", "name", "passkey", "banned", "created_at")
			u := decodeBody[userJSON](t, rec)
			if u.Name != tt.input || u.Banned || len(u.Passkey) != registry.PasskeyLen || u.ID == "" {
				t.Fatalf("user = %+v", u)
			}
			if u.CreatedAt < before || u.CreatedAt > time.Now().Unix() {
				t.Errorf("created_at %d not now", u.CreatedAt)
			}
			if loc := rec.Header().Get("Location"); loc != "/api/v1/users/"+u.ID {
				t.Errorf("Location = %q", loc)
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q", cc)
			}
			stored, err := e.store.User(context.Background(), u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if newUserJSON(stored) != u {
				t.Errorf("stored %+v, API said %+v", stored, u)
			}
			e.reload()
			if cu, ok := e.cache.UserByPasskey(u.Passkey); !ok || cu.ID != u.ID {
				t.Errorf("passkey does not resolve to the user in the cache: %v %v", cu, ok)
			}
			if n := e.logs.FilterField(zap.String("user_id", u.ID)).FilterField(zap.String("action", "user.create")).Len(); n != 1 {
				t.Errorf("%d create log lines for %s, want 1", n, u.ID)
			}
		})
	}
	t.Run("ids and passkeys differ", func(t *testing.T) {
		a, b := e.createUser("same"), e.createUser("same")
		if a.ID == b.ID || a.Passkey == b.Passkey {
			t.Errorf("two users share id or passkey: %+v %+v", a, b)
		}
	})
}

func TestGetUser(t *testing.T) {
	e := newEnv(t)
	u := e.createUser("carol")
	tests := []struct {
		name, path string
		status     int
	}{
		{"found", "/api/v1/users/" + u.ID, http.StatusOK},
		{"unknown id", "/api/v1/users/ffffffffffffffff", http.StatusNotFound},
		{"id with odd characters", "/api/v1/users/a.b", http.StatusNotFound},
		{"escaped colon", "/api/v1/users/x%3Ay", http.StatusNotFound},
		{"over-long id", "/api/v1/users/" + strings.Repeat("a", 65), http.StatusNotFound},
		{"no id", "/api/v1/users/", http.StatusNotFound},
		{"trailing slash", "/api/v1/users/" + u.ID + "/", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.do("GET", tt.path, "")
			if tt.status != http.StatusOK {
				wantError(t, rec, tt.status, "not found")
				return
			}
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
			}
			wantKeys(t, rec, "id", "name", "passkey", "banned", "created_at")
			if got := decodeBody[userJSON](t, rec); got != u {
				t.Errorf("got %+v, want %+v", got, u)
			}
		})
	}
}

func TestRotatePasskey(t *testing.T) {
	e := newEnv(t)
	u := e.createUser("dave")
	other := e.createUser("erin")
	e.reload()
	if _, ok := e.cache.UserByPasskey(u.Passkey); !ok {
		t.Fatal("old passkey not in cache before rotation")
	}

	rec := e.do("POST", "/api/v1/users/"+u.ID+"/passkey", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
	}
	wantKeys(t, rec, "id", "name", "passkey", "banned", "created_at")
	got := decodeBody[userJSON](t, rec)
	if got.ID != u.ID || got.Name != u.Name || got.CreatedAt != u.CreatedAt || got.Banned {
		t.Errorf("rotated user %+v, was %+v", got, u)
	}
	if got.Passkey == u.Passkey || len(got.Passkey) != registry.PasskeyLen {
		t.Fatalf("passkey %q -> %q", u.Passkey, got.Passkey)
	}
	stored, err := e.store.User(context.Background(), u.ID)
	if err != nil || stored.Passkey != got.Passkey {
		t.Fatalf("store has %+v, %v", stored, err)
	}
	e.reload()
	if _, ok := e.cache.UserByPasskey(u.Passkey); ok {
		t.Error("old passkey still resolves after reload")
	}
	if cu, ok := e.cache.UserByPasskey(got.Passkey); !ok || cu.ID != u.ID {
		t.Error("new passkey does not resolve after reload")
	}
	if cu, ok := e.cache.UserByPasskey(other.Passkey); !ok || cu.ID != other.ID {
		t.Error("another user's passkey was disturbed")
	}
	if e.logs.FilterField(zap.String("action", "user.rotate_passkey")).FilterField(zap.String("user_id", u.ID)).Len() != 1 {
		t.Error("no rotate log line with the user id")
	}
	if text := e.logText(); strings.Contains(text, u.Passkey) || strings.Contains(text, got.Passkey) {
		t.Errorf("log contains a passkey:\n%s", text)
	}

	t.Run("unknown user", func(t *testing.T) {
		wantError(t, e.do("POST", "/api/v1/users/ffffffffffffffff/passkey", ""), http.StatusNotFound, "not found")
		if _, err := e.store.User(context.Background(), "ffffffffffffffff"); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("rotating an unknown user created it: %v", err)
		}
	})
	t.Run("bad id", func(t *testing.T) {
		wantError(t, e.do("POST", "/api/v1/users/%20/passkey", ""), http.StatusNotFound, "not found")
	})
}

// TestRotatePasskeyFollowedByCache checks the published change reaches a
// running cache without a full reload.
func TestRotatePasskeyFollowedByCache(t *testing.T) {
	e := newEnv(t, unloaded())
	ctx, cancel := context.WithCancel(context.Background())
	if err := e.cache.Open(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.cache.Follow(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("cache.Follow: %v", err)
		}
	})
	waitFor(t, "cache ready", e.cache.Ready)
	u := e.createUser("frank")
	waitFor(t, "new user in cache", func() bool { _, ok := e.cache.UserByPasskey(u.Passkey); return ok })
	got := decodeBody[userJSON](t, e.do("POST", "/api/v1/users/"+u.ID+"/passkey", ""))
	waitFor(t, "rotation in cache", func() bool {
		_, oldOK := e.cache.UserByPasskey(u.Passkey)
		cu, newOK := e.cache.UserByPasskey(got.Passkey)
		return !oldOK && newOK && cu.ID == u.ID
	})
	e.do("POST", "/api/v1/users/"+u.ID+"/ban", "")
	waitFor(t, "ban in cache", func() bool { cu, ok := e.cache.UserByPasskey(got.Passkey); return ok && cu.Banned })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBanUnban(t *testing.T) {
	e := newEnv(t)
	u := e.createUser("grace")
	steps := []struct {
		action string
		banned bool
	}{
		{"ban", true},
		{"ban", true}, // idempotent
		{"unban", false},
		{"unban", false},
		{"ban", true},
	}
	for i, st := range steps {
		rec := e.do("POST", "/api/v1/users/"+u.ID+"/"+st.action, "")
		if rec.Code != http.StatusOK {
			t.Fatalf("step %d %s: status %d: %s", i, st.action, rec.Code, rec.Body.String())
		}
		wantKeys(t, rec, "id", "name", "passkey", "banned", "created_at")
		got := decodeBody[userJSON](t, rec)
		want := u
		want.Banned = st.banned
		if got != want {
			t.Errorf("step %d %s: got %+v, want %+v", i, st.action, got, want)
		}
		stored, err := e.store.User(context.Background(), u.ID)
		if err != nil || stored.Banned != st.banned {
			t.Errorf("step %d: store has banned=%v (%v)", i, stored.Banned, err)
		}
		e.reload()
		if cu, ok := e.cache.UserByPasskey(u.Passkey); !ok || cu.Banned != st.banned {
			t.Errorf("step %d: cache has %+v", i, cu)
		}
		// The read endpoint agrees.
		if g := decodeBody[userJSON](t, e.do("GET", "/api/v1/users/"+u.ID, "")); g.Banned != st.banned {
			t.Errorf("step %d: GET says banned=%v", i, g.Banned)
		}
	}
	if n := e.logs.FilterField(zap.String("action", "user.ban")).FilterField(zap.String("user_id", u.ID)).Len(); n != 3 {
		t.Errorf("%d ban log lines, want 3", n)
	}
	if n := e.logs.FilterField(zap.String("action", "user.unban")).FilterField(zap.String("user_id", u.ID)).Len(); n != 2 {
		t.Errorf("%d unban log lines, want 2", n)
	}
	for _, action := range []string{"ban", "unban"} {
		t.Run(action+" unknown user", func(t *testing.T) {
			wantError(t, e.do("POST", "/api/v1/users/ffffffffffffffff/"+action, ""), http.StatusNotFound, "not found")
			if _, err := e.store.User(context.Background(), "ffffffffffffffff"); !errors.Is(err, registry.ErrNotFound) {
				t.Errorf("%s of an unknown user created it: %v", action, err)
			}
		})
	}
}

func TestCreateUserBadInput(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		body   string
		status int
		want   []string
	}{
		{"empty body", "", 400, []string{"empty"}},
		{"whitespace body", "  \n", 400, []string{"empty"}},
		{"syntax error", `{"name" "x"}`, 400, []string{"malformed JSON"}},
		{"truncated", `{"name":"x"`, 400, []string{"unexpected end"}},
		{"truncated value", `{"name":"x`, 400, []string{`"name"`, "unexpected end"}},
		{"bad literal in value", `{"name":nul}`, 400, []string{`"name"`, "malformed JSON"}},
		{"trailing comma", `{"name":"x",}`, 400, []string{"malformed JSON"}},
		{"array body", `["alice"]`, 400, []string{"JSON object"}},
		{"null body", `null`, 400, []string{"JSON object"}},
		{"string body", `"alice"`, 400, []string{"JSON object"}},
		{"trailing garbage", `{"name":"x"} x`, 400, []string{"after the JSON object"}},
		{"two objects", `{"name":"x"}{"name":"y"}`, 400, []string{"after the JSON object"}},
		{"missing name", `{}`, 400, []string{`"name"`, "missing"}},
		{"unknown field", `{"name":"x","admin":true}`, 400, []string{`"admin"`, "unknown field"}},
		{"only unknown field", `{"nmae":"x"}`, 400, []string{`"nmae"`, "unknown field"}},
		{"case variant", `{"Name":"x"}`, 400, []string{`"Name"`, "unknown field"}},
		{"duplicate", `{"name":"x","name":"y"}`, 400, []string{`"name"`, "duplicate"}},
		{"number", `{"name":42}`, 400, []string{`"name"`, "must be a string", "number"}},
		{"null", `{"name":null}`, 400, []string{`"name"`, "must be a string", "null"}},
		{"object", `{"name":{}}`, 400, []string{`"name"`, "must be a string", "object"}},
		{"bool", `{"name":true}`, 400, []string{`"name"`, "boolean"}},
		{"empty name", `{"name":""}`, 400, []string{`"name"`, "empty"}},
		{"blank name", `{"name":"   "}`, 400, []string{`"name"`, "empty"}},
		{"65 chars", `{"name":"` + strings.Repeat("a", 65) + `"}`, 400, []string{`"name"`, "at most 64", "got 65"}},
		{"NUL", `{"name":"a\u0000b"}`, 400, []string{`"name"`, "not printable", "U+0000"}},
		{"newline", `{"name":"a\nb"}`, 400, []string{`"name"`, "not printable"}},
		{"tab", `{"name":"a\tb"}`, 400, []string{`"name"`, "not printable"}},
		{"DEL", `{"name":"a\u007fb"}`, 400, []string{`"name"`, "U+007F"}},
		{"C1 control", `{"name":"a\u0085b"}`, 400, []string{`"name"`, "U+0085"}},
		{"bidi override", `{"name":"a\u202eb"}`, 400, []string{`"name"`, "U+202E"}},
		{"zero width space", `{"name":"a\u200bb"}`, 400, []string{`"name"`, "U+200B"}},
		{"huge key is truncated", `{"` + strings.Repeat("k", 1000) + `":1}`, 400, []string{"unknown field", "…"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := wantError(t, e.do("POST", "/api/v1/users", tt.body), tt.status, tt.want...)
			if len(msg) > 300 {
				t.Errorf("error message is %d bytes", len(msg))
			}
		})
	}
	e.reload()
	if users, _ := e.cache.Counts(); users != 0 {
		t.Errorf("bad requests created %d users", users)
	}
}

const (
	hashLower = "0123456789abcdef0123456789abcdef01234567"
	hashUpper = "0123456789ABCDEF0123456789ABCDEF01234567"
)

func TestCreateTorrent(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, hash, tname string
		size              int64
	}{
		{"lowercase", strings.Repeat("1a", 20), "Ubuntu 24.04 ISO", 5 << 30},
		{"uppercase in, lowercase out", hashUpper, "Débian 12 — netinst", 1},
		{"mixed case", "aBcDeF" + strings.Repeat("0", 34), "x", 1<<63 - 1},
		{"long name", strings.Repeat("2b", 20), strings.Repeat("n", MaxTorrentNameLen), 42},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"info_hash":"` + tt.hash + `","size":` + itoa(tt.size) + `,"name":` + jsonString(tt.tname) + `}`
			rec := e.do("POST", "/api/v1/torrents", body)
			if rec.Code != http.StatusCreated {
				t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
			}
			wantKeys(t, rec, "info_hash", "name", "size", "created_at")
			got := decodeBody[torrentJSON](t, rec)
			lower := strings.ToLower(tt.hash)
			if got.InfoHash != lower || got.Name != tt.tname || got.Size != tt.size || got.CreatedAt == 0 {
				t.Errorf("got %+v", got)
			}
			if loc := rec.Header().Get("Location"); loc != "/api/v1/torrents/"+lower {
				t.Errorf("Location = %q", loc)
			}
			ih := mustInfoHash(t, lower)
			stored, err := e.store.Torrent(context.Background(), ih)
			if err != nil || newTorrentJSON(stored) != got {
				t.Errorf("store has %+v, %v", stored, err)
			}
			e.reload()
			if ce, ok := e.cache.Torrent(ih); !ok || ce.Name != tt.tname {
				t.Errorf("cache: %v %v", ce, ok)
			}
			if e.logs.FilterField(zap.String("action", "torrent.create")).FilterField(zap.Stringer("info_hash", ih)).Len() != 1 {
				t.Error("no create log line with the info_hash")
			}
		})
	}
	t.Run("duplicate", func(t *testing.T) {
		lower, upper := "abcdef"+hashLower[6:], "ABCDEF"+hashLower[6:]
		body := func(h string) string { return `{"info_hash":"` + h + `","size":10,"name":"first"}` }
		if rec := e.do("POST", "/api/v1/torrents", body(lower)); rec.Code != http.StatusCreated {
			t.Fatalf("first: %d %s", rec.Code, rec.Body.String())
		}
		for _, h := range []string{lower, upper} {
			wantError(t, e.do("POST", "/api/v1/torrents", body(h)), http.StatusConflict, lower, "already registered")
		}
		stored, err := e.store.Torrent(context.Background(), mustInfoHash(t, lower))
		if err != nil || stored.Name != "first" {
			t.Errorf("duplicate overwrote the torrent: %+v %v", stored, err)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestCreateTorrentBadInput(t *testing.T) {
	e := newEnv(t)
	const h = hashLower
	obj := func(ih, size, name string) string {
		return `{"info_hash":` + ih + `,"size":` + size + `,"name":` + name + `}`
	}
	good := obj(`"`+h+`"`, "1", `"n"`)
	tests := []struct {
		name   string
		body   string
		status int
		want   []string
	}{
		{"empty body", "", 400, []string{"empty"}},
		{"syntax error", `{"info_hash" 1}`, 400, []string{"malformed JSON"}},
		{"truncated", good[:len(good)-1], 400, []string{"unexpected end"}},
		{"array", `[` + good + `]`, 400, []string{"JSON object"}},
		{"trailing data", good + `,`, 400, []string{"after the JSON object"}},
		{"trailing object", good + good, 400, []string{"after the JSON object"}},
		{"missing info_hash", `{"size":1,"name":"n"}`, 400, []string{`"info_hash"`, "missing"}},
		{"missing size", `{"info_hash":"` + h + `","name":"n"}`, 400, []string{`"size"`, "missing"}},
		{"missing name", `{"info_hash":"` + h + `","size":1}`, 400, []string{`"name"`, "missing"}},
		{"unknown field", `{"info_hash":"` + h + `","size":1,"name":"n","private":true}`, 400, []string{`"private"`, "unknown field"}},
		{"case variant", `{"Info_Hash":"` + h + `","size":1,"name":"n"}`, 400, []string{`"Info_Hash"`, "unknown field"}},
		{"duplicate size", `{"info_hash":"` + h + `","size":1,"size":2,"name":"n"}`, 400, []string{`"size"`, "duplicate"}},
		{"hash 39 chars", obj(`"`+h[:39]+`"`, "1", `"n"`), 400, []string{`"info_hash"`, "40 hexadecimal"}},
		{"hash 41 chars", obj(`"`+h+`0"`, "1", `"n"`), 400, []string{`"info_hash"`, "40 hexadecimal"}},
		{"hash not hex", obj(`"`+strings.Repeat("zz", 20)+`"`, "1", `"n"`), 400, []string{`"info_hash"`, "40 hexadecimal"}},
		{"hash 0x prefix", obj(`"0x`+h[:38]+`"`, "1", `"n"`), 400, []string{`"info_hash"`}},
		{"hash base32", obj(`"`+strings.Repeat("A", 32)+`"`, "1", `"n"`), 400, []string{`"info_hash"`}},
		{"hash empty", obj(`""`, "1", `"n"`), 400, []string{`"info_hash"`}},
		{"hash number", obj(`1234`, "1", `"n"`), 400, []string{`"info_hash"`, "must be a string"}},
		{"hash null", obj(`null`, "1", `"n"`), 400, []string{`"info_hash"`, "null"}},
		{"hash with non-ASCII", obj(`"`+h[:38]+`é"`, "1", `"n"`), 400, []string{`"info_hash"`}},
		{"size zero", obj(`"`+h+`"`, "0", `"n"`), 400, []string{`"size"`, "positive"}},
		{"size negative", obj(`"`+h+`"`, "-5", `"n"`), 400, []string{`"size"`, "positive", "-5"}},
		{"size negative zero", obj(`"`+h+`"`, "-0", `"n"`), 400, []string{`"size"`}},
		{"size fraction", obj(`"`+h+`"`, "1.5", `"n"`), 400, []string{`"size"`, "integer", "1.5"}},
		{"size 1.0", obj(`"`+h+`"`, "1.0", `"n"`), 400, []string{`"size"`, "integer"}},
		{"size exponent", obj(`"`+h+`"`, "1e3", `"n"`), 400, []string{`"size"`, "integer"}},
		{"size overflow", obj(`"`+h+`"`, "9223372036854775808", `"n"`), 400, []string{`"size"`, "9223372036854775807"}},
		{"size string", obj(`"`+h+`"`, `"10"`, `"n"`), 400, []string{`"size"`, "string"}},
		{"size null", obj(`"`+h+`"`, `null`, `"n"`), 400, []string{`"size"`, "null"}},
		{"size bool", obj(`"`+h+`"`, `true`, `"n"`), 400, []string{`"size"`, "boolean"}},
		{"size array", obj(`"`+h+`"`, `[1]`, `"n"`), 400, []string{`"size"`, "array"}},
		{"size bad number", obj(`"`+h+`"`, `01`, `"n"`), 400, []string{"malformed JSON"}},
		{"name empty", obj(`"`+h+`"`, "1", `""`), 400, []string{`"name"`, "empty"}},
		{"name blank", obj(`"`+h+`"`, "1", `" "`), 400, []string{`"name"`, "empty"}},
		{"name control", obj(`"`+h+`"`, "1", `"a\u0001"`), 400, []string{`"name"`, "not printable"}},
		{"name too long", obj(`"`+h+`"`, "1", `"`+strings.Repeat("x", MaxTorrentNameLen+1)+`"`), 400, []string{`"name"`, "at most"}},
		{"name number", obj(`"`+h+`"`, "1", `7`), 400, []string{`"name"`, "must be a string"}},
		{"name missing value", `{"info_hash":"` + h + `","size":1,"name":}`, 400, []string{"malformed JSON", `"name"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, e.do("POST", "/api/v1/torrents", tt.body), tt.status, tt.want...)
		})
	}
	e.reload()
	if _, torrents := e.cache.Counts(); torrents != 0 {
		t.Errorf("bad requests registered %d torrents", torrents)
	}
}

func TestGetTorrent(t *testing.T) {
	e := newEnv(t)
	ih := mustInfoHash(t, hashLower)
	rec := e.do("POST", "/api/v1/torrents", `{"info_hash":"`+hashUpper+`","size":1000,"name":"movie"}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body.String())
	}
	created := decodeBody[torrentJSON](t, rec)
	e.swarms.set(ih, bittorrent.IPv4, 3, 2)
	e.swarms.set(ih, bittorrent.IPv6, 1, 4)
	if err := e.store.AddCompleted(context.Background(), map[bittorrent.InfoHash]int64{ih: 5}); err != nil {
		t.Fatal(err)
	}
	e.reload()
	e.cache.CountCompleted(ih) // one not yet flushed

	other := strings.Repeat("9", 40)
	if rec := e.do("POST", "/api/v1/torrents", `{"info_hash":"`+other+`","size":1,"name":"quiet"}`); rec.Code != http.StatusCreated {
		t.Fatal(rec.Body.String())
	}
	// "quiet" is not in the cache yet (no reload), nor in any swarm.

	tests := []struct {
		name, path string
		want       torrentStatsJSON
		status     int
		errParts   []string
	}{
		{"lowercase path", "/api/v1/torrents/" + hashLower,
			torrentStatsJSON{torrentJSON: created, Seeders: 4, Leechers: 6, Completed: 6}, 200, nil},
		{"uppercase path", "/api/v1/torrents/" + hashUpper,
			torrentStatsJSON{torrentJSON: created, Seeders: 4, Leechers: 6, Completed: 6}, 200, nil},
		{"empty swarm, not yet cached", "/api/v1/torrents/" + other,
			torrentStatsJSON{torrentJSON: torrentJSON{InfoHash: other, Name: "quiet", Size: 1}}, 200, nil},
		{"unknown", "/api/v1/torrents/" + strings.Repeat("f", 40), torrentStatsJSON{}, 404, []string{"not found"}},
		{"short hash", "/api/v1/torrents/abc", torrentStatsJSON{}, 400, []string{`"info_hash"`, "40 hexadecimal"}},
		{"not hex", "/api/v1/torrents/" + strings.Repeat("g", 40), torrentStatsJSON{}, 400, []string{`"info_hash"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.do("GET", tt.path, "")
			if tt.status != 200 {
				wantError(t, rec, tt.status, tt.errParts...)
				return
			}
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
			}
			wantKeys(t, rec, "info_hash", "name", "size", "created_at", "seeders", "leechers", "completed")
			got := decodeBody[torrentStatsJSON](t, rec)
			if tt.want.CreatedAt == 0 {
				tt.want.CreatedAt = got.CreatedAt
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDeleteTorrent(t *testing.T) {
	e := newEnv(t)
	ih := mustInfoHash(t, hashLower)
	if rec := e.do("POST", "/api/v1/torrents", `{"info_hash":"`+hashLower+`","size":1,"name":"n"}`); rec.Code != http.StatusCreated {
		t.Fatal(rec.Body.String())
	}
	if err := e.store.AddCompleted(context.Background(), map[bittorrent.InfoHash]int64{ih: 3}); err != nil {
		t.Fatal(err)
	}
	e.reload()
	if _, ok := e.cache.Torrent(ih); !ok {
		t.Fatal("torrent not cached")
	}

	rec := e.do("DELETE", "/api/v1/torrents/"+hashUpper, "")
	if rec.Code != http.StatusNoContent || rec.Body.Len() != 0 {
		t.Fatalf("delete: %d %q", rec.Code, rec.Body.String())
	}
	if _, err := e.store.Torrent(context.Background(), ih); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("store still has it: %v", err)
	}
	if c, _ := e.store.Completed(context.Background()); c[hashLower] != "" {
		t.Errorf("completed count survived: %v", c)
	}
	e.reload()
	if _, ok := e.cache.Torrent(ih); ok {
		t.Error("cache still has it after reload")
	}
	if e.logs.FilterField(zap.String("action", "torrent.delete")).FilterField(zap.Stringer("info_hash", ih)).Len() != 1 {
		t.Error("no delete log line")
	}

	tests := []struct {
		name, path string
		status     int
		want       []string
	}{
		{"again", "/api/v1/torrents/" + hashLower, 404, []string{"not found"}},
		{"never existed", "/api/v1/torrents/" + strings.Repeat("e", 40), 404, []string{"not found"}},
		{"bad hash", "/api/v1/torrents/xyz", 400, []string{`"info_hash"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, e.do("DELETE", tt.path, ""), tt.status, tt.want...)
		})
	}
	t.Run("re-register after delete", func(t *testing.T) {
		if rec := e.do("POST", "/api/v1/torrents", `{"info_hash":"`+hashLower+`","size":2,"name":"again"}`); rec.Code != http.StatusCreated {
			t.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
	})
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t)
	big := strings.Repeat("a", MaxBodyBytes)
	tests := []struct {
		name, path, body string
		status           int
		want             []string
	}{
		{"user: huge name", "/api/v1/users", `{"name":"` + big + `"}`, 413, []string{"larger than 65536"}},
		{"user: huge trailing space", "/api/v1/users", `{"name":"a"}` + strings.Repeat(" ", MaxBodyBytes), 413, []string{"larger than"}},
		{"user: huge unknown key", "/api/v1/users", `{"` + big + `":1}`, 413, []string{"larger than"}},
		{"torrent: huge name", "/api/v1/torrents", `{"info_hash":"` + hashLower + `","size":1,"name":"` + big + `"}`, 413, []string{"larger than"}},
		{"user: just under the limit is a 400 on the field", "/api/v1/users",
			`{"name":"` + big[:MaxBodyBytes-12] + `"}`, 400, []string{`"name"`, "at most 64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, e.do("POST", tt.path, tt.body), tt.status, tt.want...)
		})
	}
	t.Run("over a real connection", func(t *testing.T) {
		ts := httptest.NewServer(e.srv.Handler())
		defer ts.Close()
		req, _ := http.NewRequest("POST", ts.URL+"/api/v1/users", strings.NewReader(`{"name":"`+big+`"}`))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "larger than") {
			t.Errorf("%d %s", resp.StatusCode, b)
		}
	})
}

func TestRouting(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, method, path string
		status             int
		allow              string
	}{
		{"unknown route", "GET", "/nope", 404, ""},
		{"root", "GET", "/", 404, ""},
		{"unknown api route", "GET", "/api/v1/nope", 404, ""},
		{"api v2", "POST", "/api/v2/users", 404, ""},
		{"list users is not a route", "GET", "/api/v1/users", 405, "POST"},
		{"delete users", "DELETE", "/api/v1/users", 405, "POST"},
		{"put user", "PUT", "/api/v1/users/0123456789abcdef", 405, "GET, HEAD"},
		{"get passkey", "GET", "/api/v1/users/0123456789abcdef/passkey", 405, "POST"},
		{"get ban", "GET", "/api/v1/users/0123456789abcdef/ban", 405, "POST"},
		{"list torrents", "GET", "/api/v1/torrents", 405, "POST"},
		{"patch torrent", "PATCH", "/api/v1/torrents/" + hashLower, 405, "DELETE, GET, HEAD"},
		{"post healthz", "POST", "/healthz", 405, "GET, HEAD"},
		{"delete metrics", "DELETE", "/metrics", 405, "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.do(tt.method, tt.path, "")
			wantError(t, rec, tt.status)
			if got := rec.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
}

func TestHealthAndMetrics(t *testing.T) {
	e := newEnv(t)
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "seedpay_api_test_total", Help: "test"})
	e.reg.MustRegister(c)
	c.Add(7)
	tests := []struct {
		name, path, want, ctype string
	}{
		{"healthz", "/healthz", "ok\n", "text/plain; charset=utf-8"},
		{"readyz", "/readyz", `{"status":"ready"}` + "\n", "application/json"},
		{"metrics", "/metrics", "seedpay_api_test_total 7", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.doAuth("GET", tt.path, "", "") // no token needed
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
			}
			if !strings.Contains(rec.Body.String(), tt.want) {
				t.Errorf("body %q lacks %q", rec.Body.String(), tt.want)
			}
			if tt.ctype != "" && rec.Header().Get("Content-Type") != tt.ctype {
				t.Errorf("Content-Type = %q", rec.Header().Get("Content-Type"))
			}
		})
	}
}

func TestReadyz(t *testing.T) {
	tests := []struct {
		name     string
		opts     func(t *testing.T) []envOpt
		status   int
		want     string
		maxDelay time.Duration
	}{
		{"loaded and redis up", func(*testing.T) []envOpt { return nil }, 200, "", time.Second},
		{"cache not loaded", func(*testing.T) []envOpt { return []envOpt{unloaded()} }, 503, "not loaded", time.Second},
		{"redis refuses connections", func(t *testing.T) []envOpt { return []envOpt{withStore(deadStore(t))} }, 503, "redis ping failed", time.Second},
		{"redis never answers", func(t *testing.T) []envOpt { return []envOpt{withStore(hangingStore(t))} }, 503, "within 1s", 1500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts(t)...)
			start := time.Now()
			rec := e.doAuth("GET", "/readyz", "", "")
			if d := time.Since(start); d > tt.maxDelay {
				t.Errorf("readyz took %s", d)
			}
			if tt.status == 200 {
				if rec.Code != 200 {
					t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
				}
				return
			}
			msg := wantError(t, rec, tt.status, tt.want)
			if strings.Contains(msg, "127.0.0.1") {
				t.Errorf("readyz leaks an address: %q", msg)
			}
		})
	}
}

func TestInternalErrors(t *testing.T) {
	e := newEnv(t, withStore(deadStore(t)))
	tests := []struct {
		method, path, body string
		field              zap.Field
	}{
		{"POST", "/api/v1/users", `{"name":"a"}`, zap.String("op", "create user")},
		{"GET", "/api/v1/users/0123456789abcdef", "", zap.String("user_id", "0123456789abcdef")},
		{"POST", "/api/v1/users/0123456789abcdef/passkey", "", zap.String("user_id", "0123456789abcdef")},
		{"POST", "/api/v1/users/0123456789abcdef/ban", "", zap.String("op", "user.ban")},
		{"POST", "/api/v1/users/0123456789abcdef/unban", "", zap.String("op", "user.unban")},
		{"POST", "/api/v1/torrents", `{"info_hash":"` + hashLower + `","size":1,"name":"n"}`, zap.String("info_hash", hashLower)},
		{"GET", "/api/v1/torrents/" + hashLower, "", zap.String("op", "get torrent")},
		{"DELETE", "/api/v1/torrents/" + hashLower, "", zap.String("op", "delete torrent")},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			n := e.logs.Len()
			rec := e.do(tt.method, tt.path, tt.body)
			msg := wantError(t, rec, http.StatusInternalServerError)
			if msg != "internal error" {
				t.Errorf("error text %q leaks details", msg)
			}
			entries := e.logs.All()[n:]
			found := false
			for _, le := range entries {
				if le.Level != zapcore.ErrorLevel || le.Message != "admin api internal error" {
					continue
				}
				m := le.ContextMap()
				if m["error"] == nil || m["error"] == "" {
					t.Errorf("log line without the error: %v", m)
				}
				if got, ok := m[tt.field.Key]; ok && got == tt.field.String {
					found = true
				}
			}
			if !found {
				t.Errorf("no error log line with %s=%s in %v", tt.field.Key, tt.field.String, entries)
			}
		})
	}
	if strings.Contains(e.logText(), testToken) {
		t.Error("log contains the admin token")
	}
}

func TestPanicRecovered(t *testing.T) {
	e := newEnv(t)
	if rec := e.do("POST", "/api/v1/torrents", `{"info_hash":"`+hashLower+`","size":1,"name":"n"}`); rec.Code != http.StatusCreated {
		t.Fatal(rec.Body.String())
	}
	e.swarms.panics = true
	msg := wantError(t, e.do("GET", "/api/v1/torrents/"+hashLower, ""), http.StatusInternalServerError)
	if msg != "internal error" {
		t.Errorf("error text %q", msg)
	}
	if e.logs.FilterMessage("panic in admin api handler").Len() != 1 {
		t.Error("panic not logged")
	}
}

// TestNoSecretsInLogs runs every mutation and checks that neither the token
// nor any passkey that ever existed appears in any log line.
func TestNoSecretsInLogs(t *testing.T) {
	e := newEnv(t)
	u := e.createUser("heidi")
	secrets := []string{testToken, u.Passkey}
	for _, p := range []string{"passkey", "ban", "unban", "passkey"} {
		got := decodeBody[userJSON](t, e.do("POST", "/api/v1/users/"+u.ID+"/"+p, ""))
		secrets = append(secrets, got.Passkey)
	}
	decodeBody[userJSON](t, e.do("GET", "/api/v1/users/"+u.ID, ""))
	e.do("POST", "/api/v1/torrents", `{"info_hash":"`+hashLower+`","size":1,"name":"n"}`)
	e.do("DELETE", "/api/v1/torrents/"+hashLower, "")
	e.doAuth("GET", "/api/v1/users/"+u.ID, "", "Bearer "+testToken[:len(testToken)-1])
	e.doAuth("POST", "/api/v1/users", `{"name":"`+u.Passkey+`"}`, "Bearer nope")

	text := e.logText()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("secret %q... found in logs", s[:4])
		}
	}
	if strings.Contains(text, testToken[:len(testToken)-1]) {
		t.Error("presented (wrong) token found in logs")
	}
	for _, le := range e.logs.FilterLevelExact(zapcore.InfoLevel).All() {
		m := le.ContextMap()
		if m["action"] == nil {
			t.Errorf("info line without action: %s %v", le.Message, m)
		}
		if a, _ := m["action"].(string); strings.HasPrefix(a, "user.") && m["user_id"] != u.ID {
			t.Errorf("user action without user_id: %v", m)
		}
	}
}
