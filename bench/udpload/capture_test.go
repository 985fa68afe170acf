package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// pcapFile builds a capture: a pcap header, then one record per frame.
type pcapFile struct {
	bo    binary.ByteOrder
	nanos bool
	link  uint32
	buf   bytes.Buffer
}

func newPcap(bo binary.ByteOrder, nanos bool, link uint32) *pcapFile {
	p := &pcapFile{bo: bo, nanos: nanos, link: link}
	magic := uint32(0xa1b2c3d4)
	if nanos {
		magic = 0xa1b23c4d
	}
	h := make([]byte, 24)
	bo.PutUint32(h[0:], magic)
	bo.PutUint16(h[4:], 2)
	bo.PutUint16(h[6:], 4)
	bo.PutUint32(h[16:], 262144)
	bo.PutUint32(h[20:], link)
	p.buf.Write(h)
	return p
}

// add writes a record stamped at (at rounded to the file's resolution).
func (p *pcapFile) add(at time.Duration, frame []byte) {
	r := make([]byte, 16)
	frac := int64(at % time.Second)
	if !p.nanos {
		frac /= 1000
	}
	p.bo.PutUint32(r[0:], uint32(at/time.Second)+1_700_000_000)
	p.bo.PutUint32(r[4:], uint32(frac))
	p.bo.PutUint32(r[8:], uint32(len(frame)))
	p.bo.PutUint32(r[12:], uint32(len(frame)))
	p.buf.Write(r)
	p.buf.Write(frame)
}

// frame wraps a UDP payload from src to dst in IP (v4 or v6 by the
// addresses) and the file's link header.
func (p *pcapFile) frame(src, dst netip.AddrPort, payload []byte) []byte {
	return linkFrame(p.link, ipFrame(17, src, dst, udpDatagram(src.Port(), dst.Port(), payload)))
}

func udpDatagram(sport, dport uint16, payload []byte) []byte {
	u := binary.BigEndian.AppendUint16(nil, sport)
	u = binary.BigEndian.AppendUint16(u, dport)
	u = binary.BigEndian.AppendUint16(u, uint16(8+len(payload)))
	u = append(u, 0, 0)
	return append(u, payload...)
}

func ipFrame(proto byte, src, dst netip.AddrPort, body []byte) []byte {
	if src.Addr().Is4() {
		h := make([]byte, 20)
		h[0], h[8], h[9] = 0x45, 64, proto
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(body)))
		copy(h[12:], src.Addr().AsSlice())
		copy(h[16:], dst.Addr().AsSlice())
		return append(h, body...)
	}
	h := make([]byte, 40)
	h[0], h[6], h[7] = 0x60, proto, 64
	binary.BigEndian.PutUint16(h[4:], uint16(len(body)))
	copy(h[8:], src.Addr().AsSlice())
	copy(h[24:], dst.Addr().AsSlice())
	return append(h, body...)
}

func linkFrame(link uint32, ip []byte) []byte {
	proto := uint16(0x0800)
	if ip[0]>>4 == 6 {
		proto = 0x86dd
	}
	switch link {
	case linkEthernet:
		h := make([]byte, 14)
		binary.BigEndian.PutUint16(h[12:], proto)
		return append(h, ip...)
	case linkSLL:
		h := make([]byte, 16)
		binary.BigEndian.PutUint16(h[14:], proto)
		return append(h, ip...)
	case linkSLL2:
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h[0:], proto)
		return append(h, ip...)
	}
	return ip
}

// request is a BEP 15 request's first 16 bytes and some body.
func request(action, tx uint32) []byte {
	b := binary.BigEndian.AppendUint64(nil, fakeConnID)
	b = append(b, u32(action, tx)...)
	return append(b, make([]byte, 82)...)
}

// captureCase writes one run to p: two clients, answers after 50 and 150
// µs, one request unanswered, one stray reply, and frames that are not the
// tracker's (TCP, another port, a fragment) in between.
func captureCase(p *pcapFile, tracker netip.AddrPort) {
	c1 := netip.AddrPortFrom(tracker.Addr(), 40001)
	c2 := netip.AddrPortFrom(tracker.Addr(), 40002)
	ms := time.Millisecond
	p.add(1*ms, p.frame(c1, tracker, request(actionConnect, 0x100)))
	p.add(1*ms+50*time.Microsecond, p.frame(tracker, c1, reply(actionConnect, 0x100, u32(1, 2))))
	p.add(2*ms, p.frame(c1, tracker, request(actionAnnounce, 0x200)))
	p.add(2*ms, p.frame(c2, tracker, request(actionAnnounce, 0x200))) // same tx, another client
	// TCP between the same ports, a request's bytes after a 20-byte header: not read.
	tcp := append(udpDatagram(c1.Port(), tracker.Port(), nil)[:4:4], make([]byte, 16)...)
	p.add(2*ms+10*time.Microsecond, linkFrame(p.link, ipFrame(6, c1, tracker, append(tcp, request(actionAnnounce, 0x500)...))))
	p.add(2*ms+20*time.Microsecond, p.frame(c1, netip.AddrPortFrom(tracker.Addr(), 9999), request(actionAnnounce, 0x300)))
	p.add(2*ms+150*time.Microsecond, p.frame(tracker, c2, reply(actionAnnounce, 0x200, u32(1800, 1, 2))))
	p.add(2*ms+150*time.Microsecond, p.frame(tracker, c1, reply(actionAnnounce, 0x200, u32(1800, 1, 2))))
	p.add(5*ms, p.frame(c2, tracker, request(actionScrape, 0x300))) // never answered
	p.add(5*ms+5*time.Microsecond, p.frame(tracker, c2, reply(actionError, 0x999, []byte("stray"))))
	if tracker.Addr().Is4() { // a fragment of a datagram to the tracker: not read
		f := ipFrame(17, c1, tracker, udpDatagram(40001, tracker.Port(), request(actionAnnounce, 0x400)))
		f[6] = 0x20 // more fragments
		p.add(6*ms, linkFrame(p.link, f))
	}
}

func TestReadCapture(t *testing.T) {
	v4 := netip.MustParseAddrPort("127.0.0.1:6969")
	v6 := netip.MustParseAddrPort("[::1]:6969")
	for _, tt := range []struct {
		name    string
		bo      binary.ByteOrder
		nanos   bool
		link    uint32
		tracker netip.AddrPort
	}{
		{"ethernet-ns-le", binary.LittleEndian, true, linkEthernet, v4},
		{"ethernet-us-be", binary.BigEndian, false, linkEthernet, v4},
		{"sll-ns", binary.LittleEndian, true, linkSLL, v4},
		{"sll2-us", binary.LittleEndian, false, linkSLL2, v4},
		{"raw-v6", binary.LittleEndian, true, linkRaw, v6},
		{"ethernet-v6", binary.BigEndian, true, linkEthernet, v6},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newPcap(tt.bo, tt.nanos, tt.link)
			captureCase(p, tt.tracker)
			st, err := readCapture(&p.buf, tt.tracker)
			if err != nil {
				t.Fatal(err)
			}
			if st.requests != 4 || st.replies != 4 || st.matched != 3 || st.unmatched != 1 || st.unanswered != 1 {
				t.Fatalf("requests %d replies %d matched %d unmatched %d unanswered %d, want 4 4 3 1 1",
					st.requests, st.replies, st.matched, st.unmatched, st.unanswered)
			}
			near := func(got, want time.Duration) bool { return got >= want*96/100 && got <= want*104/100 }
			if p50, max := st.net.quantile(0.5), time.Duration(st.net.max); !near(p50, 150*time.Microsecond) || max != 150*time.Microsecond {
				t.Errorf("latency p50 %v max %v, want 150µs (two of 50, 150, 150 µs)", p50, max)
			}
			if st.net.quantile(0.01) > 52*time.Microsecond {
				t.Errorf("latency p1 %v, want 50µs", st.net.quantile(0.01))
			}
			if st.reqGap != 3*time.Millisecond || st.replyGap != 2855*time.Microsecond ||
				st.reqGapAt != time.Millisecond || st.replyGapAt != 1150*time.Microsecond {
				t.Errorf("pauses: requests %v from %v, replies %v from %v; want 3ms from 1ms and 2.855ms from 1.15ms",
					st.reqGap, st.reqGapAt, st.replyGap, st.replyGapAt)
			}
		})
	}
}

func TestReadCaptureRejects(t *testing.T) {
	tracker := netip.MustParseAddrPort("127.0.0.1:6969")
	good := newPcap(binary.LittleEndian, true, linkEthernet)
	captureCase(good, tracker)
	whole := good.buf.Bytes()
	record := func(incl uint32, frac uint32) []byte {
		p := newPcap(binary.LittleEndian, true, linkEthernet)
		r := make([]byte, 16)
		binary.LittleEndian.PutUint32(r[4:], frac)
		binary.LittleEndian.PutUint32(r[8:], incl)
		return append(p.buf.Bytes(), r...)
	}
	ipv4Link := newPcap(binary.LittleEndian, true, 228)                // LINKTYPE_IPV4: not read
	fcs := newPcap(binary.LittleEndian, true, linkEthernet|0x10000000) // FCS length bits: still Ethernet
	fcs.link = linkEthernet
	captureCase(fcs, tracker)
	if st, err := readCapture(&fcs.buf, tracker); err != nil || st.matched != 3 {
		t.Errorf("Ethernet with FCS bits in the link type: %v, %+v", err, st)
	}
	for _, tt := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "pcap header"},
		{"pcapng", append([]byte{0x0a, 0x0d, 0x0d, 0x0a}, make([]byte, 20)...), "not a pcap file"},
		{"link", ipv4Link.buf.Bytes(), "link type 228"},
		{"record header cut", whole[:24+7], "record 1: header"},
		{"record cut", whole[:24+16+10], "record 1: unexpected EOF"},
		{"huge record", record(1<<30, 0), "more than 262144"},
		{"fraction", record(0, 1e9), "fraction of a second"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readCapture(bytes.NewReader(tt.in), tracker)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
}

// The capture reader keeps at most maxPending requests awaiting replies.
func TestReadCaptureBoundsPending(t *testing.T) {
	tracker := netip.MustParseAddrPort("127.0.0.1:6969")
	p := newPcap(binary.LittleEndian, true, linkRaw)
	c := netip.AddrPortFrom(tracker.Addr(), 40001)
	const limit = 100
	for i := range limit {
		p.add(time.Duration(i), p.frame(c, tracker, request(actionAnnounce, uint32(i))))
	}
	p.add(limit, p.frame(c, tracker, request(actionAnnounce, 7))) // the same request again: no new entry
	st, err := readCaptureLimit(bytes.NewReader(p.buf.Bytes()), tracker, limit)
	if err != nil || st.unanswered != limit {
		t.Fatalf("%d pending: %v, %+v", limit, err, st)
	}
	p.add(limit+1, p.frame(c, tracker, request(actionAnnounce, limit)))
	_, err = readCaptureLimit(&p.buf, tracker, limit)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("record %d: more than %d requests unanswered", limit+2, limit)) {
		t.Fatalf("err %v, want the pending bound", err)
	}
}

// The filter samples by the sequence's low byte: the offsets it names are
// that byte in our requests and in the tracker's replies.
func TestCaptureFilterSamplesBySequence(t *testing.T) {
	w := &worker{}
	for seq := 1; seq <= 40; seq++ {
		tx := w.nextTx(seq % 7)
		req := udpDatagram(40001, 6969, appendConnect(nil, tx))
		rep := udpDatagram(6969, 40001, reply(actionAnnounce, tx, u32(1800, 1, 2)))
		if req[reqSeqByteOff] != byte(seq) || rep[repSeqByteOff] != byte(seq) {
			t.Fatalf("seq %d (tx %#x): request byte %d, reply byte %d", seq, tx, req[reqSeqByteOff], rep[repSeqByteOff])
		}
	}
	want := "udp and ((dst port 6969 and udp[22] & 15 == 0) or (src port 6969 and udp[14] & 15 == 0))"
	if got := captureFilter(6969); got != want {
		t.Fatalf("filter %q, want %q", got, want)
	}
}

// -capture reads a file and prints the RESULT line compare.sh reads.
func TestCaptureFlag(t *testing.T) {
	tracker := netip.MustParseAddrPort("127.0.0.1:6969")
	p := newPcap(binary.LittleEndian, true, linkEthernet)
	captureCase(p, tracker)
	name := t.TempDir() + "/run.pcap"
	if err := os.WriteFile(name, p.buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if code := run([]string{"-target", tracker.String(), "-capture", name}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errOut.String())
	}
	res := parseResult(t, out.String())
	if res["capture_matched"] != 3 || res["net_max_us"] != 150 || res["capture_unanswered"] != 1 {
		t.Fatalf("RESULT %v", res)
	}
	// A capture of another port holds nothing of this tracker's.
	out.Reset()
	errOut.Reset()
	if code := run([]string{"-target", "127.0.0.1:7000", "-capture", name}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "no reply from 127.0.0.1:7000") {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}

func FuzzReadCapture(f *testing.F) {
	tracker := netip.MustParseAddrPort("127.0.0.1:6969")
	for _, link := range []uint32{linkEthernet, linkSLL, linkSLL2, linkRaw} {
		p := newPcap(binary.LittleEndian, true, link)
		captureCase(p, tracker)
		f.Add(p.buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		st, err := readCapture(bytes.NewReader(in), tracker)
		if err != nil {
			return
		}
		if st.matched > st.requests || st.matched+st.unmatched != st.replies ||
			st.unanswered > st.requests || st.net.total != st.matched {
			t.Fatalf("inconsistent counts: %+v", *st)
		}
	})
}
