package tracker

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/frontend"
	httpfront "github.com/chihaya/chihaya/frontend/http"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/internal/reqctx"
)

// errMissingPasskey answers an announce to a URL without a passkey.
var errMissingPasskey = bittorrent.ClientError("missing passkey: use your personal announce URL, /announce/<passkey>")

// httpFrontend serves BEP 3 announces and BEP 48 scrapes. It reuses chihaya's
// request parsing and writes its own responses (sorted keys, no os.Exit on
// failure, post hooks run after the response is flushed, no goroutine per
// request).
type httpFrontend struct {
	mux     *http.ServeMux
	logic   frontend.TrackerLogic
	into    intoLogic // logic's allocation-free form, nil for other logics
	opts    httpfront.ParseOptions
	metrics *Metrics
	log     *zap.Logger
	bufs    sync.Pool
	states  sync.Pool // *httpState
	srv     *http.Server
	fails   failLog
}

// httpState is what one request reuses: its context, response and peer
// buffer, and the passkey route parameter boxed once.
type httpState struct {
	ctx   reqctx.Ctx
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
	f.states.Put(st)
}

func newHTTPFrontend(cfg Config, logic frontend.TrackerLogic, m *Metrics, log *zap.Logger) *httpFrontend {
	f := &httpFrontend{
		logic: logic,
		opts: httpfront.ParseOptions{
			RealIPHeader:        cfg.RealIPHeader,
			MaxNumWant:          cfg.MaxNumWant,
			DefaultNumWant:      cfg.DefaultNumWant,
			MaxScrapeInfoHashes: cfg.MaxScrapeInfoHashes,
		},
		metrics: m,
		log:     log,
		bufs:    sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }},
	}
	f.into, _ = logic.(intoLogic)
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
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	return f
}

// withPasskey puts the path's passkey where chihaya hooks read route params.
func withPasskey(ctx context.Context, passkey string) context.Context {
	if passkey == "" {
		return ctx
	}
	return context.WithValue(ctx, bittorrent.RouteParamsKey, bittorrent.RouteParams{{Key: "passkey", Value: passkey}})
}

func (f *httpFrontend) announce(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var err error
	defer func() { f.metrics.observe(protoHTTP, actionAnnounce, err, start) }()

	passkey := r.PathValue("passkey")
	if passkey == "" {
		err = errMissingPasskey
		f.writeError(w, actionAnnounce, err)
		return
	}
	req, err := httpfront.ParseAnnounce(r, f.opts)
	if err != nil {
		f.writeError(w, actionAnnounce, err)
		return
	}
	st := f.state()
	defer f.end(st)
	var ctx context.Context
	var resp *bittorrent.AnnounceResponse
	if f.into != nil {
		resp = &st.resp
		*resp = bittorrent.AnnounceResponse{IPv4Peers: st.peers[:0], IPv6Peers: st.peers[:0]}
		ctx, err = f.into.announceInto(st.begin(r.Context(), passkey), req, resp)
	} else {
		ctx, resp, err = f.logic.HandleAnnounce(withPasskey(r.Context(), passkey), req)
	}
	if err != nil {
		f.writeError(w, actionAnnounce, err)
		return
	}
	f.writeAnnounce(w, resp)
	if f.into == nil {
		f.logic.AfterAnnounce(ctx, req, resp)
	} else if err := f.into.afterAnnounce(ctx, req, resp); err != nil {
		f.fails.postHooksFailed(f.log, f.metrics, protoHTTP, actionAnnounce, err)
	}
}

func (f *httpFrontend) scrape(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var err error
	defer func() { f.metrics.observe(protoHTTP, actionScrape, err, start) }()

	passkey := r.PathValue("passkey")
	if passkey == "" {
		err = errMissingPasskey
		f.writeError(w, actionScrape, err)
		return
	}
	req, err := httpfront.ParseScrape(r, f.opts)
	if err != nil {
		f.writeError(w, actionScrape, err)
		return
	}
	req.AddressFamily = bittorrent.IPv4
	if host, _, splitErr := net.SplitHostPort(r.RemoteAddr); splitErr == nil {
		if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
			req.AddressFamily = bittorrent.IPv6
		}
	}
	st := f.state()
	defer f.end(st)
	var ctx context.Context
	var resp *bittorrent.ScrapeResponse
	if f.into != nil {
		resp = &st.sresp
		resp.Files = st.files[:0]
		ctx, err = f.into.scrapeInto(st.begin(r.Context(), passkey), req, resp)
	} else {
		ctx, resp, err = f.logic.HandleScrape(withPasskey(r.Context(), passkey), req)
	}
	if err != nil {
		f.writeError(w, actionScrape, err)
		return
	}
	f.write(w, func(b []byte) []byte { return appendScrape(b, resp) })
	if f.into == nil {
		f.logic.AfterScrape(ctx, req, resp)
	} else if err := f.into.afterScrape(ctx, req, resp); err != nil {
		f.fails.postHooksFailed(f.log, f.metrics, protoHTTP, actionScrape, err)
	}
}

// writeError answers a request of action a with a bencoded failure reason.
// Internal errors are logged (throttled) and hidden from the client.
func (f *httpFrontend) writeError(w http.ResponseWriter, a action, err error) {
	msg := "internal server error"
	var ce bittorrent.ClientError
	if errors.As(err, &ce) {
		msg = ce.Error()
	} else {
		f.fails.requestFailed(f.log, a, err)
	}
	f.write(w, func(b []byte) []byte { return appendFailure(b, msg) })
}

// contentType is every reply's Content-Type header value (never modified).
var contentType = []string{"text/plain; charset=utf-8"}

// writeAnnounce writes an announce reply without a closure.
func (f *httpFrontend) writeAnnounce(w http.ResponseWriter, resp *bittorrent.AnnounceResponse) {
	bp := f.bufs.Get().(*[]byte)
	b := appendAnnounce((*bp)[:0], resp)
	h := w.Header()
	h["Content-Type"] = contentType
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	f.send(w, bp, b)
}

func (f *httpFrontend) write(w http.ResponseWriter, encode func([]byte) []byte) {
	bp := f.bufs.Get().(*[]byte)
	b := encode((*bp)[:0])
	h := w.Header()
	h["Content-Type"] = contentType
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	f.send(w, bp, b)
}

// send writes b (from the buffer pool's bp) and flushes it to the client.
func (f *httpFrontend) send(w http.ResponseWriter, bp *[]byte, b []byte) {
	_, _ = w.Write(b)
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush() // the client has its answer before the post hooks run
	}
	if cap(b) <= 64<<10 {
		*bp = b
		f.bufs.Put(bp)
	}
}

func (f *httpFrontend) serve(l net.Listener) error {
	if err := f.srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (f *httpFrontend) shutdown(ctx context.Context) error {
	return f.srv.Shutdown(ctx)
}
