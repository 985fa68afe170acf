package tracker

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/frontend"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/internal/reqctx"
)

// errMissingPasskey answers an announce to a URL without a passkey.
var errMissingPasskey = bittorrent.ClientError("missing passkey: use your personal announce URL, /announce/<passkey>")

// httpFrontend serves BEP 3 announces and BEP 48 scrapes: plain GETs on
// its own connection loop (httpserver.go), the rest through net/http with
// the same parser and hooks. Replies have sorted keys; post hooks run after
// the reply is written; no goroutine per request.
type httpFrontend struct {
	mux     *http.ServeMux
	into    intoLogic
	opts    httpParseOptions
	metrics *Metrics
	log     *zap.Logger
	bufs    sync.Pool // reply buffers
	// readBufs are the connections' first read buffers (httpReadBuf).
	readBufs sync.Pool
	states   sync.Pool // *httpState
	srv      *http.Server
	fails    failLog

	realIPHeader                           string
	readTimeout, writeTimeout, idleTimeout time.Duration
	conns                                  conns
	slow                                   *connQueue // net/http's listener
	// forceHandoff sends every connection to net/http (to compare the
	// two paths in one benchmark run).
	forceHandoff bool
}

// httpState is what one request reuses: its parse, context, response and
// peer buffer, and the passkey route parameter boxed once.
type httpState struct {
	ctx   reqctx.Ctx
	q     httpQuery
	ip    [16]byte
	req   bittorrent.AnnounceRequest
	sreq  bittorrent.ScrapeRequest
	resp  bittorrent.AnnounceResponse
	sresp bittorrent.ScrapeResponse
	peers []bittorrent.Peer
	files []bittorrent.Scrape
	rp    [1]bittorrent.RouteParam
	rpAny any // bittorrent.RouteParams(rp[:])
}

func (f *httpFrontend) state() *httpState {
	if st, ok := f.states.Get().(*httpState); ok {
		return st
	}
	st := &httpState{
		peers: make([]bittorrent.Peer, 0, f.opts.MaxNumWant+1),
		files: make([]bittorrent.Scrape, 0, f.opts.MaxScrapeInfoHashes),
	}
	st.q.hashes = make([]bittorrent.InfoHash, 0, max(f.opts.MaxScrapeInfoHashes, 2))
	st.rp[0].Key = "passkey"
	st.rpAny = bittorrent.RouteParams(st.rp[:])
	return st
}

// begin resets st for a request carrying passkey and returns its context.
func (st *httpState) begin(parent context.Context, passkey string) context.Context {
	st.ctx.Reset(parent)
	st.rp[0].Value = passkey
	return reqctx.With(&st.ctx, bittorrent.RouteParamsKey, st.rpAny)
}

// end drops the request's references and returns st to the pool.
func (f *httpFrontend) end(st *httpState) {
	st.ctx.Reset(context.Background())
	st.rp[0].Value = ""
	// Only what this request used (the responses' peers share st.peers).
	clear(st.peers[:min(max(len(st.resp.IPv4Peers), len(st.resp.IPv6Peers)), cap(st.peers))])
	st.resp, st.sresp = bittorrent.AnnounceResponse{}, bittorrent.ScrapeResponse{}
	st.req, st.sreq = bittorrent.AnnounceRequest{}, bittorrent.ScrapeRequest{}
	st.q.path, st.q.query = "", ""
	f.states.Put(st)
}

func newHTTPFrontend(cfg Config, logic frontend.TrackerLogic, m *Metrics, log *zap.Logger) *httpFrontend {
	f := &httpFrontend{
		opts: httpParseOptions{
			MaxNumWant:          cfg.MaxNumWant,
			DefaultNumWant:      cfg.DefaultNumWant,
			MaxScrapeInfoHashes: cfg.MaxScrapeInfoHashes,
		},
		metrics:      m,
		log:          log,
		bufs:         sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }},
		readBufs:     sync.Pool{New: func() any { b := make([]byte, 0, httpReadBuf); return &b }},
		realIPHeader: cfg.RealIPHeader,
		readTimeout:  cfg.HTTPReadTimeout,
		writeTimeout: cfg.HTTPWriteTimeout,
		idleTimeout:  cfg.HTTPIdleTimeout,
		conns:        conns{set: make(map[*httpConn]struct{}), handed: make(map[*prefixConn]struct{}), max: cfg.HTTPMaxConns, metrics: m, log: log},
	}
	f.conns.freed.L = &f.conns.mu
	if f.conns.max <= 0 {
		f.conns.max = DefaultHTTPMaxConns
	}
	if f.idleTimeout <= 0 {
		f.idleTimeout = f.readTimeout // as net/http
	}
	f.into = intoOf(logic)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /announce/{passkey}", f.announce)
	mux.HandleFunc("GET /scrape/{passkey}", f.scrape)
	mux.HandleFunc("GET /announce", f.announce)
	mux.HandleFunc("GET /scrape", f.scrape)
	f.mux = mux
	f.srv = &http.Server{
		Handler:           mux,
		ReadTimeout:       cfg.HTTPReadTimeout,
		ReadHeaderTimeout: cfg.HTTPReadTimeout,
		WriteTimeout:      cfg.HTTPWriteTimeout,
		IdleTimeout:       cfg.HTTPIdleTimeout,
		MaxHeaderBytes:    httpMaxHead,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
		// Every connection net/http serves was handed over (handoff) and
		// counted against http_max_conns until it ends here.
		ConnState: f.conns.netState,
	}
	return f
}

// postAnnounce is an answered announce whose post hooks are still to run
// (after its reply is written); the zero value runs nothing.
type postAnnounce struct {
	ctx  context.Context
	req  *bittorrent.AnnounceRequest
	resp *bittorrent.AnnounceResponse
}

func (p postAnnounce) run(f *httpFrontend) {
	if p.ctx == nil {
		return
	}
	if err := f.into.afterAnnounce(p.ctx, p.req, p.resp); err != nil {
		f.fails.postHooksFailed(f.log, f.metrics, protoHTTP, actionAnnounce, err)
	}
}

type postScrape struct {
	ctx  context.Context
	req  *bittorrent.ScrapeRequest
	resp *bittorrent.ScrapeResponse
}

func (p postScrape) run(f *httpFrontend) {
	if p.ctx == nil {
		return
	}
	if err := f.into.afterScrape(p.ctx, p.req, p.resp); err != nil {
		f.fails.postHooksFailed(f.log, f.metrics, protoHTTP, actionScrape, err)
	}
}

// doAnnounce answers an announce (request target, the path's passkey, the
// peer's addresses) in st: it appends the bencoded reply, a failure reason
// on error, to b.
func (f *httpFrontend) doAnnounce(b []byte, st *httpState, parent context.Context, target, passkey string, remote netip.Addr, realIP string) ([]byte, postAnnounce, error) {
	if passkey == "" {
		return f.appendError(b, actionAnnounce, errMissingPasskey), postAnnounce{}, errMissingPasskey
	}
	req := &st.req
	if err := parseHTTPAnnounce(target, remote, realIP, &f.opts, req, &st.q, &st.ip); err != nil {
		return f.appendError(b, actionAnnounce, err), postAnnounce{}, err
	}
	resp := &st.resp
	*resp = bittorrent.AnnounceResponse{IPv4Peers: st.peers[:0], IPv6Peers: st.peers[:0]}
	ctx, err := f.into.announceInto(st.begin(parent, passkey), req, resp)
	if err != nil {
		return f.appendError(b, actionAnnounce, err), postAnnounce{}, err
	}
	return appendAnnounce(b, resp), postAnnounce{ctx, req, resp}, nil
}

// doScrape is doAnnounce for a scrape; the address family of the reply is
// the remote address's.
func (f *httpFrontend) doScrape(b []byte, st *httpState, parent context.Context, target, passkey string, remote netip.Addr) ([]byte, postScrape, error) {
	if passkey == "" {
		return f.appendError(b, actionScrape, errMissingPasskey), postScrape{}, errMissingPasskey
	}
	req := &st.sreq
	if err := parseHTTPScrape(target, int(f.opts.MaxScrapeInfoHashes), req, &st.q); err != nil {
		return f.appendError(b, actionScrape, err), postScrape{}, err
	}
	req.AddressFamily = bittorrent.IPv4
	if remote.Is6() && !remote.Is4In6() {
		req.AddressFamily = bittorrent.IPv6
	}
	resp := &st.sresp
	resp.Files = st.files[:0]
	ctx, err := f.into.scrapeInto(st.begin(parent, passkey), req, resp)
	if err != nil {
		return f.appendError(b, actionScrape, err), postScrape{}, err
	}
	return appendScrape(b, resp), postScrape{ctx, req, resp}, nil
}

// remoteAddr is net/http's RemoteAddr ("host:port") as an address.
func remoteAddr(s string) netip.Addr {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().WithZone("")
}

func (f *httpFrontend) announce(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	realIP := ""
	if f.realIPHeader != "" {
		realIP = r.Header.Get(f.realIPHeader)
	}
	st := f.state()
	bp := f.bufs.Get().(*[]byte)
	b, post, err := f.doAnnounce((*bp)[:0], st, r.Context(), r.RequestURI, r.PathValue("passkey"), remoteAddr(r.RemoteAddr), realIP)
	f.send(w, b)
	post.run(f)
	f.metrics.observe(protoHTTP, actionAnnounce, err, start)
	f.end(st)
	f.putBuf(bp, b)
}

func (f *httpFrontend) scrape(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := f.state()
	bp := f.bufs.Get().(*[]byte)
	b, post, err := f.doScrape((*bp)[:0], st, r.Context(), r.RequestURI, r.PathValue("passkey"), remoteAddr(r.RemoteAddr))
	f.send(w, b)
	post.run(f)
	f.metrics.observe(protoHTTP, actionScrape, err, start)
	f.end(st)
	f.putBuf(bp, b)
}

// appendError appends the failure reply to a request of action a.
// Internal errors are logged (throttled) and hidden from the client.
func (f *httpFrontend) appendError(b []byte, a action, err error) []byte {
	msg := "internal server error"
	var ce bittorrent.ClientError
	if errors.As(err, &ce) {
		msg = ce.Error()
	} else {
		f.fails.requestFailed(f.log, a, err)
	}
	return appendFailure(b, msg)
}

// contentType is every reply's Content-Type header value (never modified).
var contentType = []string{"text/plain; charset=utf-8"}

// send writes the reply b through net/http and flushes it, so the client
// has its answer before the post hooks run.
func (f *httpFrontend) send(w http.ResponseWriter, b []byte) {
	h := w.Header()
	h["Content-Type"] = contentType
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	_, _ = w.Write(b)
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
}

// putBuf returns a reply buffer (grown to b) to the pool.
func (f *httpFrontend) putBuf(bp *[]byte, b []byte) {
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		f.bufs.Put(bp)
	}
}
