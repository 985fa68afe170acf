package peerstore

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type collector struct {
	s         *Store
	peers     *prometheus.Desc
	swarms    *prometheus.Desc
	gcRuns    *prometheus.Desc
	gcRemoved *prometheus.Desc
	gcSeconds *prometheus.Desc
	gcHold    *prometheus.Desc
}

// Collector returns a prometheus.Collector for the store, computed at
// scrape time from Counts (nothing is registered anywhere):
//
//	seedpay_peers{kind="seeder"|"leecher"}       gauge
//	seedpay_swarms                               gauge
//	seedpay_peerstore_gc_runs_total              counter
//	seedpay_peerstore_gc_removed_peers_total     counter
//	seedpay_peerstore_gc_last_duration_seconds   gauge
//	seedpay_peerstore_gc_last_max_hold_seconds   gauge (longest shard lock hold)
func (s *Store) Collector() prometheus.Collector {
	return &collector{
		s:         s,
		peers:     prometheus.NewDesc("seedpay_peers", "Peers in the peer store, by kind.", []string{"kind"}, nil),
		swarms:    prometheus.NewDesc("seedpay_swarms", "Swarms with at least one peer (per address family).", nil, nil),
		gcRuns:    prometheus.NewDesc("seedpay_peerstore_gc_runs_total", "Completed sweeps for stale peers.", nil, nil),
		gcRemoved: prometheus.NewDesc("seedpay_peerstore_gc_removed_peers_total", "Stale peers removed by sweeps.", nil, nil),
		gcSeconds: prometheus.NewDesc("seedpay_peerstore_gc_last_duration_seconds", "Duration of the last sweep.", nil, nil),
		gcHold:    prometheus.NewDesc("seedpay_peerstore_gc_last_max_hold_seconds", "Longest time the last sweep held one shard's lock.", nil, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.peers
	ch <- c.swarms
	ch <- c.gcRuns
	ch <- c.gcRemoved
	ch <- c.gcSeconds
	ch <- c.gcHold
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	swarms, seeders, leechers := c.s.Counts()
	ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(seeders), "seeder")
	ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(leechers), "leecher")
	ch <- prometheus.MustNewConstMetric(c.swarms, prometheus.GaugeValue, float64(swarms))
	ch <- prometheus.MustNewConstMetric(c.gcRuns, prometheus.CounterValue, float64(c.s.gcRuns.Load()))
	ch <- prometheus.MustNewConstMetric(c.gcRemoved, prometheus.CounterValue, float64(c.s.gcRemoved.Load()))
	ch <- prometheus.MustNewConstMetric(c.gcSeconds, prometheus.GaugeValue, time.Duration(c.s.gcNanos.Load()).Seconds())
	ch <- prometheus.MustNewConstMetric(c.gcHold, prometheus.GaugeValue, time.Duration(c.s.gcMaxHold.Load()).Seconds())
}
