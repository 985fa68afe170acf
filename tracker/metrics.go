package tracker

import (
	"errors"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/prometheus/client_golang/prometheus"
)

type protocol int

const (
	protoHTTP protocol = iota
	protoUDP
	numProtocols
)

var protocolNames = [numProtocols]string{"http", "udp"}

type action int

const (
	actionAnnounce action = iota
	actionScrape
	actionConnect
	numActions
)

var actionNames = [numActions]string{"announce", "scrape", "connect"}

type result int

const (
	resultOK      result = iota
	resultFailure        // the client got a failure reason
	resultError          // our fault: an internal error
	numResults
)

var resultNames = [numResults]string{"ok", "failure", "error"}

// udpDrop is why the UDP socket loop dropped a datagram or a reply.
type udpDrop int

const (
	dropTruncated udpDrop = iota // longer than the read buffer
	dropBadSource                // no usable source address
	dropSendError                // the reply could not be sent
	dropReadError                // the socket read failed for want of kernel memory
	numUDPDrops
)

var udpDropNames = [numUDPDrops]string{"truncated", "bad_source", "send_error", "read_error"}

// Metrics counts requests by protocol, action and result, and their latency.
// Counters are resolved once so the hot path does no label lookups.
type Metrics struct {
	requests [numProtocols][numActions][numResults]prometheus.Counter
	latency  [numProtocols][numActions]prometheus.Observer
	dropped  [numProtocols]prometheus.Counter
	// udpDropped counts what the UDP socket loop drops unanswered.
	udpDropped [numUDPDrops]prometheus.Counter
	// postHookErrors counts requests whose PostHooks failed (after the
	// client had its answer).
	postHookErrors [numProtocols][numActions]prometheus.Counter
	// httpConns counts the HTTP connections on our own loop;
	// httpHandoffs those it handed to net/http.
	httpConns    prometheus.Gauge
	httpHandoffs prometheus.Counter
	// httpEvicted counts idle connections closed to make room at
	// http_max_conns; httpPaused the times accepting waited at it.
	httpEvicted prometheus.Counter
	httpPaused  prometheus.Counter
}

// NewMetrics registers the tracker's metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "seedpay", Subsystem: "tracker", Name: "requests_total",
		Help: "Tracker requests by protocol, action and result (ok, failure: the client got a failure reason, error: internal).",
	}, []string{"protocol", "action", "result"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "seedpay", Subsystem: "tracker", Name: "request_duration_seconds",
		Help:    "Time from parsed request to written response.",
		Buckets: []float64{10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 50e-3, 0.25},
	}, []string{"protocol", "action"})
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "seedpay", Subsystem: "tracker", Name: "malformed_total",
		Help: "Requests dropped or refused before parsing (too short, bad connection id, unknown action).",
	}, []string{"protocol"})
	udpDropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "seedpay", Subsystem: "tracker", Name: "udp_dropped_total",
		Help: "UDP datagrams dropped unanswered (truncated: longer than the read buffer, bad_source: no usable source address), replies that could not be sent (send_error) and socket reads that failed for want of kernel memory (read_error, retried after 10 ms).",
	}, []string{"reason"})
	postHookErrors := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "seedpay", Subsystem: "tracker", Name: "post_hook_errors_total",
		Help: "Requests whose PostHooks (completion counter, accounting) failed after the reply, by protocol and action.",
	}, []string{"protocol", "action"})
	httpConns := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "seedpay", Subsystem: "tracker", Name: "http_connections",
		Help: "Open HTTP connections served by the tracker's own announce loop (not counting those handed to net/http).",
	})
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "tracker", Name: name, Help: help})
	}
	httpHandoffs := counter("http_handoffs_total",
		"HTTP connections handed from the announce loop to net/http (other routes, HEAD, request bodies, unusual requests).")
	httpEvicted := counter("http_connections_evicted_total",
		"Idle keep-alive HTTP connections closed to make room for a new one at tracker.http_max_conns.")
	httpPaused := counter("http_accept_paused_total",
		"Times the HTTP listener stopped accepting at tracker.http_max_conns, no idle connection found to close; new connections wait in the kernel's listen backlog until one closes or turns idle.")
	for _, c := range []prometheus.Collector{requests, latency, dropped, udpDropped, postHookErrors, httpConns, httpHandoffs, httpEvicted, httpPaused} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m := &Metrics{httpConns: httpConns, httpHandoffs: httpHandoffs, httpEvicted: httpEvicted, httpPaused: httpPaused}
	for r := range numUDPDrops {
		m.udpDropped[r] = udpDropped.WithLabelValues(udpDropNames[r])
	}
	for p := range numProtocols {
		m.dropped[p] = dropped.WithLabelValues(protocolNames[p])
		for a := range numActions {
			m.latency[p][a] = latency.WithLabelValues(protocolNames[p], actionNames[a])
			m.postHookErrors[p][a] = postHookErrors.WithLabelValues(protocolNames[p], actionNames[a])
			for r := range numResults {
				m.requests[p][a][r] = requests.WithLabelValues(protocolNames[p], actionNames[a], resultNames[r])
			}
		}
	}
	return m, nil
}

func (m *Metrics) observe(p protocol, a action, err error, start time.Time) {
	r := resultOK
	if err != nil {
		r = resultError
		var ce bittorrent.ClientError
		if errors.As(err, &ce) {
			r = resultFailure
		}
	}
	m.requests[p][a][r].Inc()
	m.latency[p][a].Observe(time.Since(start).Seconds())
}
