package tracker

import (
	"net"

	"github.com/prometheus/client_golang/prometheus"
)

// udpSocketCollector reports, at each scrape, what the kernel holds for the
// tracker's UDP sockets: the memory of datagrams waiting to be read, the
// receive buffer, and datagrams dropped before the tracker read them (why:
// docs/DESIGN.md, "UDP receive buffer"). It costs one getsockopt per socket
// per scrape and nothing per request. A scrape where a socket cannot be read
// (closed at shutdown, a kernel without SO_MEMINFO) reports nothing rather
// than zeros: a drops counter that fell would read as a reset.
type udpSocketCollector struct {
	conns                []*net.UDPConn
	queue, buffer, drops *prometheus.Desc
}

// UDPSocketCollector returns a prometheus.Collector for the UDP sockets
// Listen bound (none before Listen, or with UDP off). Where the kernel does
// not report socket memory (not Linux) it collects nothing.
func (s *Server) UDPSocketCollector() prometheus.Collector { return newUDPSocketCollector(s.udpConns) }

func newUDPSocketCollector(conns []*net.UDPConn) *udpSocketCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName("seedpay", "tracker", name), help, nil, nil)
	}
	return &udpSocketCollector{
		conns: conns,
		queue: desc("udp_receive_queue_bytes",
			"Kernel memory held by datagrams waiting in the UDP sockets' receive queues, all sockets (a datagram's buffer, ~800 B for an announce, not its payload)."),
		buffer: desc("udp_receive_buffer_bytes",
			"Size of the UDP sockets' receive buffers, all sockets (what seedpay asks, capped at net.core.rmem_max, then doubled by the kernel)."),
		drops: desc("udp_receive_drops_total",
			"Datagrams the kernel dropped for the UDP sockets before the tracker read them, mostly because a receive buffer was full (all sockets)."),
	}
}

func (c *udpSocketCollector) Describe(ch chan<- *prometheus.Desc) {
	if socketMemInfoSupported {
		ch <- c.queue
		ch <- c.buffer
		ch <- c.drops
	}
}

func (c *udpSocketCollector) Collect(ch chan<- prometheus.Metric) {
	if !socketMemInfoSupported || len(c.conns) == 0 {
		return
	}
	var total socketMem
	for _, conn := range c.conns {
		m, err := socketMemInfo(conn)
		if err != nil {
			return
		}
		total.queued += m.queued
		total.buffer += m.buffer
		total.drops += m.drops
	}
	ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(total.queued))
	ch <- prometheus.MustNewConstMetric(c.buffer, prometheus.GaugeValue, float64(total.buffer))
	ch <- prometheus.MustNewConstMetric(c.drops, prometheus.CounterValue, float64(total.drops))
}

// socketMem is a socket's receive side as the kernel accounts it.
type socketMem struct {
	queued uint64 // bytes of datagrams waiting to be read (their kernel size)
	buffer uint64 // the receive buffer
	drops  uint64 // datagrams dropped before they were read
}
