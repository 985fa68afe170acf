package tracker

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/middleware"
	"github.com/chihaya/chihaya/pkg/timecache"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// failHook fails every request with err.
type failHook struct{ err error }

func (h failHook) HandleAnnounce(ctx context.Context, _ *bittorrent.AnnounceRequest, _ *bittorrent.AnnounceResponse) (context.Context, error) {
	return ctx, h.err
}

func (h failHook) HandleScrape(ctx context.Context, _ *bittorrent.ScrapeRequest, _ *bittorrent.ScrapeResponse) (context.Context, error) {
	return ctx, h.err
}

// failFrontends are both frontends on a Logic with the given hooks, their
// logs observed and their metrics in a registry of their own.
type failFrontends struct {
	http *httpFrontend
	udp  *udpWorker
	reg  *prometheus.Registry
	logs *observer.ObservedLogs
	c    *udpClient
	from netip.AddrPort
}

func newFailFrontends(t *testing.T, pre, post []middleware.Hook) *failFrontends {
	t.Helper()
	logic := NewLogic(middleware.ResponseConfig{AnnounceInterval: time.Minute, MinAnnounceInterval: time.Minute}, pre, post)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	uf, err := newUDPFrontend(DefaultConfig(), logic, m, log.Named("udp"))
	if err != nil {
		t.Fatal(err)
	}
	w := uf.newWorker()
	from := netip.MustParseAddrPort("10.0.0.1:6881")
	a4 := from.Addr().As4()
	c := &udpClient{t: t, connID: [8]byte(w.gen.appendID(nil, a4[:], timecache.Now()))}
	return &failFrontends{http: newHTTPFrontend(DefaultConfig(), logic, m, log.Named("http")), udp: w, reg: reg, logs: logs, c: c, from: from}
}

func (ff *failFrontends) requests(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		a := announce{peerID: peerID(i), ih: ihX, port: 6881, numwant: -1}
		for _, target := range []string{"/announce/" + fuzzPasskey + "?" + a.query(), "/scrape/" + fuzzPasskey + "?info_hash=" + strings.Repeat("a", 20)} {
			rec := httptest.NewRecorder()
			ff.http.srv.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		}
		ff.udp.handle(ff.c.announcePacket(a, "/"+fuzzPasskey), ff.from, nil)
		ff.udp.handle(ff.c.scrapePacket([]bittorrent.InfoHash{ihX}, "/"+fuzzPasskey), ff.from, nil)
	}
}

// lines lists the loggers of the observed lines with message msg.
func (ff *failFrontends) lines(msg string) string {
	var names []string
	for _, e := range ff.logs.FilterMessage(msg).All() {
		names = append(names, e.LoggerName)
	}
	return strings.Join(names, " ")
}

// TestPostHookFailuresCountedAndThrottled: every failed PostHook is
// counted, by protocol and action; the log has one line per action and
// frontend for a burst.
func TestPostHookFailuresCountedAndThrottled(t *testing.T) {
	ff := newFailFrontends(t, nil, []middleware.Hook{failHook{errors.New("sink down")}})
	ff.requests(t, 3)
	for _, proto := range []string{"http", "udp"} {
		for _, action := range []string{"announce", "scrape"} {
			if got := postHookErrors(t, ff.reg, proto, action); got != 3 {
				t.Errorf("%s %s: %v post-hook errors counted, want 3", proto, action, got)
			}
		}
	}
	for _, msg := range []string{"post-announce hooks failed", "post-scrape hooks failed"} {
		if got := ff.lines(msg); got != "http udp" {
			t.Errorf("%q logged by %q, want once by each frontend (http udp)", msg, got)
		}
	}
}

// TestRequestFailuresLogNameTheAction: an internal error logs (throttled)
// the action that failed: a scrape is not an announce.
func TestRequestFailuresLogNameTheAction(t *testing.T) {
	ff := newFailFrontends(t, []middleware.Hook{failHook{errors.New("store down")}}, nil)
	ff.requests(t, 3)
	for _, msg := range []string{"announce failed", "scrape failed"} {
		if got := ff.lines(msg); got != "http udp" {
			t.Errorf("%q logged by %q, want once by each frontend (http udp)", msg, got)
		}
	}
	for _, e := range ff.logs.All() {
		if e.ContextMap()["error"] != "store down" {
			t.Errorf("log %q without the error: %v", e.Message, e.ContextMap())
		}
	}
	if got := counterValue(t, ff.reg, "seedpay_tracker_requests_total", "result", "error"); got != 12 {
		t.Errorf("%v requests counted as errors, want 12", got)
	}
}

// postHookErrors reads seedpay_tracker_post_hook_errors_total{protocol, action}.
func postHookErrors(t *testing.T, g prometheus.Gatherer, proto, action string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "seedpay_tracker_post_hook_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["protocol"] == proto && labels["action"] == action {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
