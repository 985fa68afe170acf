// Package api is seedpay's admin HTTP API: user and torrent management
// behind a bearer token, plus the unauthenticated /metrics, /healthz and
// /readyz endpoints. Listening and shutdown are the caller's business; this
// package only builds the http.Handler.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/middleware/registry"
	"github.com/seedpay/seedpay/rewards"
)

// MinTokenLen is the shortest admin token Config.Validate accepts. It admits
// the dev default "dev-admin-token"; configs demands 24+ outside dev mode.
const MinTokenLen = 12

// ReadyPingTimeout bounds the Redis PING behind /readyz.
const ReadyPingTimeout = time.Second

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("invalid api config")

// Config configures the admin API.
type Config struct {
	// AdminToken is the bearer token every /api/ request must carry.
	AdminToken string `yaml:"admin_token"`
}

// Validate checks the config. Errors never contain the token itself.
func (c Config) Validate() error {
	if c.AdminToken == "" {
		return fmt.Errorf("admin_token: must be set: %w", ErrConfig)
	}
	if len(c.AdminToken) < MinTokenLen {
		return fmt.Errorf("admin_token: must be at least %d characters, got %d: %w", MinTokenLen, len(c.AdminToken), ErrConfig)
	}
	for i := 0; i < len(c.AdminToken); i++ {
		// HTTP trims white space around header values, so a token with
		// spaces or control characters could never be presented.
		if b := c.AdminToken[i]; b <= ' ' || b > '~' {
			return fmt.Errorf("admin_token: must be printable ASCII without spaces (byte %d is not): %w", i, ErrConfig)
		}
	}
	return nil
}

// SwarmCounter reports a swarm's peers; chihaya's storage.PeerStore
// satisfies it.
type SwarmCounter interface {
	ScrapeSwarm(ih bittorrent.InfoHash, af bittorrent.AddressFamily) bittorrent.Scrape
}

// Deps are the services the API works on.
type Deps struct {
	Store *registry.Store
	// Cache supplies completion counts and readiness.
	Cache *registry.Cache
	// Swarms supplies seeders (Complete) and leechers (Incomplete).
	Swarms SwarmCounter
	// Gatherer is served at /metrics.
	Gatherer prometheus.Gatherer
	// Log may be nil (no logging).
	Log *zap.Logger
	// Ledger serves the reward routes; nil leaves them out.
	Ledger *rewards.Ledger
	// Addresses serves the payout-address routes; nil leaves them out.
	Addresses *rewards.Addresses
	// Payer serves the payout routes; nil leaves them out.
	Payer *rewards.Payer
	// ReceiptKeys serves receipt-key registration and receipt stats; nil leaves them out.
	ReceiptKeys *rewards.ReceiptKeys
	// Pools serves the pool, deposit and bounty routes; nil leaves them out.
	Pools *rewards.Pools
	// Public serves the public API and transparency page (needs Ledger); nil leaves them out.
	Public *PublicConfig
}

// Server is the admin API. It is safe for concurrent use.
type Server struct {
	tokenSum [sha256.Size]byte
	store    *registry.Store
	cache    *registry.Cache
	swarms   SwarmCounter
	ledger   *rewards.Ledger
	payer    *rewards.Payer
	log      *zap.Logger
	mux      *http.ServeMux
	handler  http.Handler
}

// New validates cfg and d and builds the server.
func New(cfg Config, d Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case d.Store == nil:
		return nil, fmt.Errorf("api: Deps.Store is nil: %w", ErrConfig)
	case d.Cache == nil:
		return nil, fmt.Errorf("api: Deps.Cache is nil: %w", ErrConfig)
	case d.Swarms == nil:
		return nil, fmt.Errorf("api: Deps.Swarms is nil: %w", ErrConfig)
	case d.Gatherer == nil:
		return nil, fmt.Errorf("api: Deps.Gatherer is nil: %w", ErrConfig)
	}
	log := d.Log
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{
		tokenSum: sha256.Sum256([]byte(cfg.AdminToken)),
		store:    d.Store,
		cache:    d.Cache,
		swarms:   d.Swarms,
		ledger:   d.Ledger,
		payer:    d.Payer,
		log:      log.Named("api"),
		mux:      http.NewServeMux(),
	}

	m := s.mux
	m.Handle("POST /api/v1/users", s.admin(s.createUser))
	m.Handle("GET /api/v1/users/{id}", s.admin(s.getUser))
	m.Handle("POST /api/v1/users/{id}/passkey", s.admin(s.rotatePasskey))
	m.Handle("POST /api/v1/users/{id}/ban", s.admin(s.setBanned(true)))
	m.Handle("POST /api/v1/users/{id}/unban", s.admin(s.setBanned(false)))
	m.Handle("POST /api/v1/torrents", s.admin(s.createTorrent))
	m.Handle("GET /api/v1/torrents/{info_hash}", s.admin(s.getTorrent))
	m.Handle("DELETE /api/v1/torrents/{info_hash}", s.admin(s.deleteTorrent))

	if s.ledger != nil {
		s.routeRewards(m)
	}
	if d.Addresses != nil {
		s.routeAddresses(m, d.Addresses)
	}
	if s.payer != nil {
		s.routePayouts(m)
	}
	if d.ReceiptKeys != nil {
		s.routeReceipts(m, d.ReceiptKeys)
	}
	if d.Pools != nil {
		s.routePools(m, d.Pools)
	}
	s.routePublic(m, d)

	m.Handle("GET /metrics", promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{
		ErrorLog: zap.NewStdLog(s.log.Named("metrics")),
	}))
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)

	s.handler = s.recoverPanics(http.HandlerFunc(s.route))
	return s, nil
}

// Handler returns the API's handler.
func (s *Server) Handler() http.Handler { return s.handler }

// route dispatches through the mux, but answers "no such route" and "wrong
// method" itself so those are JSON too. Under /api/ a request without the
// token learns nothing about which routes exist: it gets 401.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r) // sets r.PathValue; h would not
		return
	}
	if strings.HasPrefix(r.URL.Path, "/api/") && !s.authorize(w, r) {
		return
	}
	// h is the mux's 404 or 405 handler; keep its status and Allow header.
	c := &captureWriter{header: make(http.Header)}
	h.ServeHTTP(c, r)
	if allow := c.header.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	status := c.status
	if status == 0 {
		status = http.StatusNotFound
	}
	msg := "not found"
	if status == http.StatusMethodNotAllowed {
		msg = fmt.Sprintf("method %s not allowed", r.Method)
	}
	writeError(w, status, msg)
}

// captureWriter records the status a handler chose and discards the body.
type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return len(b), nil
}
func (c *captureWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

// admin wraps an admin handler with the bearer-token check.
func (s *Server) admin(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorize(w, r) {
			return
		}
		h(w, r)
	})
}

// authorize checks "Authorization: Bearer <token>" and answers 401 when it
// is missing or wrong. Fixed-length digests are compared in constant time so
// neither the token's content nor its length leaks through timing.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) bool {
	h := r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(h, " ")
	sum := sha256.Sum256([]byte(token))
	ok := subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) == 1
	if ok && strings.EqualFold(scheme, "Bearer") {
		return true
	}
	msg := "invalid bearer token"
	if h == "" {
		msg = "missing bearer token"
	} else if !strings.EqualFold(scheme, "Bearer") {
		msg = "authorization scheme must be Bearer"
	}
	s.log.Warn("admin request unauthorized",
		zap.String("reason", msg),
		zap.String("method", r.Method),
		zap.String("path", r.URL.Path),
		zap.String("remote_addr", r.RemoteAddr))
	w.Header().Set("WWW-Authenticate", "Bearer")
	writeError(w, http.StatusUnauthorized, msg)
	return false
}

// recoverPanics turns a handler panic into a 500 and a log line.
func (s *Server) recoverPanics(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic in admin api handler",
				zap.String("method", r.Method),
				zap.String("pattern", r.Pattern),
				zap.Any("panic", v),
				zap.ByteString("stack", debug.Stack()))
			writeError(w, http.StatusInternalServerError, "internal error")
		}()
		h.ServeHTTP(w, r)
	})
}

// writeJSON sends v as the JSON body with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store") // bodies may carry passkeys
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // only fails if the client went away
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

// internalError answers 500 and logs err with the operation and any ids
// (never secrets: callers pass ids only).
func (s *Server) internalError(w http.ResponseWriter, r *http.Request, op string, err error, fields ...zap.Field) {
	fields = append(fields,
		zap.String("op", op),
		zap.String("method", r.Method),
		zap.String("pattern", r.Pattern),
		zap.Error(err))
	s.log.Error("admin api internal error", fields...)
	writeError(w, http.StatusInternalServerError, "internal error")
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok\n"))
}

type statusBody struct {
	Status string `json:"status"`
}

// readyz is 200 once the registry cache has loaded and Redis answers a PING
// within ReadyPingTimeout. The reason for a 503 is coarse on purpose: the
// endpoint is unauthenticated, so Redis addresses stay in the log.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.cache.Ready() {
		writeError(w, http.StatusServiceUnavailable, "registry cache not loaded yet")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), ReadyPingTimeout)
	defer cancel()
	// go-redis ignores context deadlines on socket reads unless the client
	// has ContextTimeoutEnabled, so the 1 s bound is enforced here; a PING
	// stuck past it finishes (or times out) in the background.
	done := make(chan error, 1)
	go func() { done <- s.store.Redis().Ping(ctx).Err() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		msg := "redis ping failed"
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			msg = fmt.Sprintf("redis ping did not answer within %s", ReadyPingTimeout)
		}
		s.log.Warn("readiness check failed", zap.String("reason", msg), zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, msg)
		return
	}
	writeJSON(w, http.StatusOK, statusBody{Status: "ready"})
}
