package api

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/seedpay/seedpay/internal/redistest"
	"github.com/seedpay/seedpay/middleware/registry"
)

const testToken = "test-admin-token-0123456789abcdef"

// fakeSwarms is a SwarmCounter with fixed answers per address family.
type fakeSwarms struct {
	mu      sync.Mutex
	scrapes map[bittorrent.AddressFamily]map[bittorrent.InfoHash]bittorrent.Scrape
	panics  bool
}

func (f *fakeSwarms) set(ih bittorrent.InfoHash, af bittorrent.AddressFamily, complete, incomplete uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.scrapes == nil {
		f.scrapes = make(map[bittorrent.AddressFamily]map[bittorrent.InfoHash]bittorrent.Scrape)
	}
	if f.scrapes[af] == nil {
		f.scrapes[af] = make(map[bittorrent.InfoHash]bittorrent.Scrape)
	}
	f.scrapes[af][ih] = bittorrent.Scrape{InfoHash: ih, Complete: complete, Incomplete: incomplete}
}

func (f *fakeSwarms) ScrapeSwarm(ih bittorrent.InfoHash, af bittorrent.AddressFamily) bittorrent.Scrape {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panics {
		panic("fake swarm store exploded")
	}
	return f.scrapes[af][ih] // zero Scrape for unknown swarms, like chihaya
}

// env is an API on a private redis-server.
type env struct {
	tb     testing.TB
	rdb    *redis.Client
	store  *registry.Store
	cache  *registry.Cache
	swarms *fakeSwarms
	reg    *prometheus.Registry
	logs   *observer.ObservedLogs // nil when logging is off
	srv    *Server
}

type envOpt func(*envConfig)

type envConfig struct {
	quiet  bool            // no log observer (fuzzing would hoard entries)
	store  *registry.Store // replaces the API's store (e.g. one on a dead Redis)
	noLoad bool            // leave the cache unloaded
}

func quiet() envOpt                      { return func(c *envConfig) { c.quiet = true } }
func withStore(s *registry.Store) envOpt { return func(c *envConfig) { c.store = s } }
func unloaded() envOpt                   { return func(c *envConfig) { c.noLoad = true } }

func newEnv(tb testing.TB, opts ...envOpt) *env {
	tb.Helper()
	var cfg envConfig
	for _, o := range opts {
		o(&cfg)
	}
	rs := redistest.Start(tb)
	e := &env{tb: tb, rdb: rs.Client(tb), swarms: &fakeSwarms{}, reg: prometheus.NewRegistry()}
	e.store = registry.NewStore(e.rdb)
	log := zap.NewNop()
	if !cfg.quiet {
		core, logs := observer.New(zapcore.DebugLevel)
		log, e.logs = zap.New(core), logs
	}
	cache, err := registry.NewCache(e.store, registry.CacheConfig{}, log)
	if err != nil {
		tb.Fatal(err)
	}
	e.cache = cache
	if !cfg.noLoad {
		e.reload()
	}
	store := e.store
	if cfg.store != nil {
		store = cfg.store
	}
	e.srv, err = New(Config{AdminToken: testToken}, Deps{
		Store: store, Cache: e.cache, Swarms: e.swarms, Gatherer: e.reg, Log: log,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func (e *env) reload() {
	e.tb.Helper()
	if err := e.cache.Reload(context.Background()); err != nil {
		e.tb.Fatalf("cache reload: %v", err)
	}
}

// do sends a request with the admin token.
func (e *env) do(method, path, body string) *httptest.ResponseRecorder {
	return e.doAuth(method, path, body, "Bearer "+testToken)
}

// doAuth sends a request with the given Authorization header ("" = none).
func (e *env) doAuth(method, path, body, auth string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	return rec
}

// deadStore is a Store on a port where nothing listens.
func deadStore(tb testing.TB) *registry.Store {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond, DialerRetries: 1})
	tb.Cleanup(func() { _ = c.Close() })
	return registry.NewStore(c)
}

// hangingStore is a Store on a server that accepts connections and never
// answers.
func hangingStore(tb testing.TB) *registry.Store {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	c := redis.NewClient(&redis.Options{Addr: l.Addr().String(), MaxRetries: -1})
	tb.Cleanup(func() {
		_ = c.Close()
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return registry.NewStore(c)
}

// decodeBody decodes a JSON response into T, failing on unknown fields.
func decodeBody[T any](tb testing.TB, rec *httptest.ResponseRecorder) T {
	tb.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("Content-Type = %q, want application/json (body %q)", ct, rec.Body.String())
	}
	var v T
	dec := json.NewDecoder(strings.NewReader(rec.Body.String()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		tb.Fatalf("decode %T from %q: %v", v, rec.Body.String(), err)
	}
	return v
}

// keysOf returns the top-level keys of a JSON object response.
func keysOf(tb testing.TB, rec *httptest.ResponseRecorder) map[string]bool {
	tb.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		tb.Fatalf("response %q is not a JSON object: %v", rec.Body.String(), err)
	}
	keys := make(map[string]bool, len(m))
	for k := range m {
		keys[k] = true
	}
	return keys
}

func wantKeys(tb testing.TB, rec *httptest.ResponseRecorder, want ...string) {
	tb.Helper()
	got := keysOf(tb, rec)
	if len(got) != len(want) {
		tb.Errorf("response keys = %v, want %v", got, want)
	}
	for _, k := range want {
		if !got[k] {
			tb.Errorf("response %s lacks key %q", rec.Body.String(), k)
		}
	}
}

// wantError checks status, JSON content type and that the error text
// contains every one of parts.
func wantError(tb testing.TB, rec *httptest.ResponseRecorder, status int, parts ...string) string {
	tb.Helper()
	if rec.Code != status {
		tb.Fatalf("status = %d, want %d (body %q)", rec.Code, status, rec.Body.String())
	}
	b := decodeBody[errorBody](tb, rec)
	if b.Error == "" {
		tb.Fatalf("empty error text in %q", rec.Body.String())
	}
	for _, p := range parts {
		if !strings.Contains(b.Error, p) {
			tb.Errorf("error %q does not mention %q", b.Error, p)
		}
	}
	return b.Error
}

func mustInfoHash(tb testing.TB, s string) bittorrent.InfoHash {
	tb.Helper()
	ih, err := registry.ParseInfoHash(s)
	if err != nil {
		tb.Fatal(err)
	}
	return ih
}

// createUser makes a user through the API.
func (e *env) createUser(name string) userJSON {
	e.tb.Helper()
	rec := e.do("POST", "/api/v1/users", `{"name":`+jsonString(name)+`}`)
	if rec.Code != http.StatusCreated {
		e.tb.Fatalf("create user: %d %s", rec.Code, rec.Body.String())
	}
	return decodeBody[userJSON](e.tb, rec)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// logText renders every captured log entry, fields included, as text.
func (e *env) logText() string {
	var b strings.Builder
	for _, le := range e.logs.All() {
		b.WriteString(le.Message)
		fields, _ := json.Marshal(le.ContextMap())
		b.Write(fields)
		b.WriteString("\n")
	}
	return b.String()
}
