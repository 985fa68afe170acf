package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// A packet capture of a load run (tcpdump -w) gives the tracker's own
// latency: from the request's capture stamp to its reply's, both taken by
// the kernel as the packets pass the loopback device, the request inside the
// generator's send and the reply inside the tracker's. Whatever the generator
// does before it sends and after the reply is queued to it is left out, and
// so is its pacer's lag: a request sent late is timed from when it was sent.
// compare.sh captures a sample (captureFilter) beside the open-loop run at
// half of peak, and udpload -capture reads it.

// Limits on what a capture may hold, so that a damaged or hostile file
// cannot make the reader allocate without bound.
const (
	maxCaptureRecord = 256 << 10 // bytes a record may hold (tcpdump's largest snaplen)
	maxPending       = 1 << 18   // requests awaiting their reply (a 5 s run's sample holds ~50k)
)

// Link types of the pcap format (LINKTYPE_*).
const (
	linkEthernet = 1
	linkRaw      = 101
	linkSLL      = 113
	linkSLL2     = 276
)

// The sample: a request is in it when the low byte of its sequence number
// (tx = seq<<8 | slot, nextTx) is 0 mod captureEvery. In the request the
// transaction id is at payload offset 12, in the reply at 4; its byte 2 is
// the sequence's low byte; the UDP header is 8 bytes.
const (
	captureEvery  = 16
	reqSeqByteOff = 8 + 12 + 2
	repSeqByteOff = 8 + 4 + 2
)

// captureFilter is the tcpdump filter for a sampled capture of the traffic
// to and from the tracker on port.
func captureFilter(port int) string {
	return fmt.Sprintf("udp and ((dst port %d and udp[%d] & %d == 0) or (src port %d and udp[%d] & %d == 0))",
		port, reqSeqByteOff, captureEvery-1, port, repSeqByteOff, captureEvery-1)
}

// captureStats is what a capture shows of the tracker.
type captureStats struct {
	requests   uint64        // BEP 15 requests to the tracker
	replies    uint64        // and replies from it
	matched    uint64        // replies to a captured request
	unmatched  uint64        // replies to no captured request
	unanswered uint64        // requests with no captured reply
	net        histogram     // reply stamp - request stamp
	reqGap     time.Duration // longest pause between captured requests
	replyGap   time.Duration // longest pause between captured replies
	reqGapAt   time.Duration // when they began, from the first record
	replyGapAt time.Duration
}

type endpoint struct {
	addr netip.Addr
	port uint16
}

type txKey struct {
	client endpoint
	tx     uint32
}

// readCapture matches the BEP 15 requests to tracker in a pcap stream with
// their replies (by client address, port and transaction id).
func readCapture(r io.Reader, tracker netip.AddrPort) (*captureStats, error) {
	return readCaptureLimit(r, tracker, maxPending)
}

// readCaptureLimit is readCapture with at most limit requests awaiting a
// reply.
func readCaptureLimit(r io.Reader, tracker netip.AddrPort, limit int) (*captureStats, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var gh [24]byte
	if _, err := io.ReadFull(br, gh[:]); err != nil {
		return nil, fmt.Errorf("pcap header: %w", err)
	}
	var bo binary.ByteOrder
	var nanos bool
	switch m := binary.LittleEndian.Uint32(gh[:4]); m {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo, nanos = binary.LittleEndian, m == 0xa1b23c4d
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo, nanos = binary.BigEndian, m == 0x4d3cb2a1
	default:
		return nil, fmt.Errorf("not a pcap file (magic %#x; pcapng is not read: tcpdump -w writes pcap)", m)
	}
	link := bo.Uint32(gh[20:24]) & 0xffff // the upper bits may carry an FCS length
	switch link {
	case linkEthernet, linkRaw, linkSLL, linkSLL2:
	default:
		return nil, fmt.Errorf("pcap link type %d not read (Ethernet, raw IP, Linux cooked only)", link)
	}
	tr := endpoint{tracker.Addr().Unmap(), tracker.Port()} // frames carry plain IPv4 addresses
	st := &captureStats{}
	pending := make(map[txKey]int64)
	var first, lastReq, lastReply int64
	buf := make([]byte, 0, 2048)
	var rh [16]byte
	for n := 1; ; n++ {
		if _, err := io.ReadFull(br, rh[:]); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("record %d: header: %w", n, err)
		}
		sec, frac, incl := int64(bo.Uint32(rh[0:4])), int64(bo.Uint32(rh[4:8])), bo.Uint32(rh[8:12])
		if incl > maxCaptureRecord {
			return nil, fmt.Errorf("record %d: %d bytes, more than %d", n, incl, maxCaptureRecord)
		}
		if !nanos {
			frac *= 1000
		}
		if frac >= 1e9 {
			return nil, fmt.Errorf("record %d: fraction of a second %d out of range", n, frac)
		}
		at := sec*1e9 + frac
		if n == 1 {
			first = at
		}
		if int(incl) > cap(buf) {
			buf = make([]byte, incl) // at most maxCaptureRecord
		}
		buf = buf[:incl]
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, fmt.Errorf("record %d: %w", n, err)
		}
		src, dst, payload, ok := udpOf(buf, link)
		if !ok {
			continue
		}
		be := binary.BigEndian
		switch {
		case dst == tr && len(payload) >= 16 && be.Uint32(payload[8:]) <= actionScrape:
			st.requests++
			if gap := time.Duration(at - lastReq); lastReq != 0 && gap > st.reqGap {
				st.reqGap, st.reqGapAt = gap, time.Duration(lastReq-first)
			}
			lastReq = at
			k := txKey{src, be.Uint32(payload[12:])}
			if _, dup := pending[k]; !dup && len(pending) >= limit {
				return nil, fmt.Errorf("record %d: more than %d requests unanswered", n, limit)
			}
			pending[k] = at
		case src == tr && len(payload) >= 8 && be.Uint32(payload) <= actionError:
			st.replies++
			if gap := time.Duration(at - lastReply); lastReply != 0 && gap > st.replyGap {
				st.replyGap, st.replyGapAt = gap, time.Duration(lastReply-first)
			}
			lastReply = at
			k := txKey{dst, be.Uint32(payload[4:])}
			sent, ok := pending[k]
			if !ok {
				st.unmatched++
				continue
			}
			delete(pending, k)
			st.matched++
			st.net.record(time.Duration(at - sent))
		}
	}
	st.unanswered = uint64(len(pending))
	return st, nil
}

// udpOf finds the UDP datagram in a captured frame: its source, destination
// and payload (as much as was captured); ok is false for anything else.
func udpOf(frame []byte, link uint32) (src, dst endpoint, payload []byte, ok bool) {
	var proto uint16
	ip := frame
	if link == linkRaw {
		if len(frame) == 0 {
			return
		}
		switch frame[0] >> 4 {
		case 4:
			proto = 0x0800
		case 6:
			proto = 0x86dd
		}
	} else {
		// The cooked and Ethernet headers: where the EtherType is, and their length.
		at, size := 12, 14 // Ethernet
		switch link {
		case linkSLL:
			at, size = 14, 16
		case linkSLL2:
			at, size = 0, 20
		}
		if len(frame) < size {
			return
		}
		proto, ip = binary.BigEndian.Uint16(frame[at:]), frame[size:]
	}
	var udp []byte
	switch proto {
	case 0x0800:
		if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != 17 {
			return
		}
		ihl := int(ip[0]&15) * 4
		if ihl < 20 || len(ip) < ihl || binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 { // a fragment
			return
		}
		src.addr, dst.addr = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
		udp = ip[ihl:]
	case 0x86dd:
		if len(ip) < 40 || ip[0]>>4 != 6 || ip[6] != 17 { // UDP right after the fixed header only
			return
		}
		src.addr, dst.addr = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
		udp = ip[40:]
	default:
		return
	}
	if len(udp) < 8 {
		return
	}
	src.port, dst.port = binary.BigEndian.Uint16(udp[0:]), binary.BigEndian.Uint16(udp[2:])
	end := int(binary.BigEndian.Uint16(udp[4:]))
	if end < 8 {
		return
	}
	return src, dst, udp[8:min(end, len(udp))], true
}

// print writes the capture's figures, with a RESULT line for scripts.
func (st *captureStats) print(w io.Writer, tracker netip.AddrPort) {
	h := &st.net
	fmt.Fprintf(w, "udpload -capture: tracker %s: %d requests, %d replies, %d matched, %d replies to no captured request, %d requests unanswered\n",
		tracker, st.requests, st.replies, st.matched, st.unmatched, st.unanswered)
	fmt.Fprintf(w, "  latency in the tracker (request captured -> reply captured)    p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		us(h.quantile(0.50)), us(h.quantile(0.90)), us(h.quantile(0.99)), us(h.quantile(0.999)), us(time.Duration(h.max)))
	fmt.Fprintf(w, "  longest pause between captured requests %s from %.3fs, between replies %s from %.3fs (one in both at once: the generator's; in the replies alone: the tracker's)\n",
		us(st.reqGap), st.reqGapAt.Seconds(), us(st.replyGap), st.replyGapAt.Seconds())
	fmt.Fprintf(w, "RESULT capture_requests=%d capture_replies=%d capture_matched=%d capture_unmatched=%d capture_unanswered=%d net_p50_us=%.0f net_p90_us=%.0f net_p99_us=%.0f net_p999_us=%.0f net_max_us=%.0f req_gap_max_us=%.0f reply_gap_max_us=%.0f\n",
		st.requests, st.replies, st.matched, st.unmatched, st.unanswered,
		usf(h.quantile(0.50)), usf(h.quantile(0.90)), usf(h.quantile(0.99)), usf(h.quantile(0.999)), usf(time.Duration(h.max)),
		usf(st.reqGap), usf(st.replyGap))
}
