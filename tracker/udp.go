package tracker

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/frontend"
	udpfront "github.com/chihaya/chihaya/frontend/udp"
	"github.com/chihaya/chihaya/pkg/timecache"
	"go.uber.org/zap"
)

// BEP 15 actions; 4 is opentracker's old IPv6 announce.
const (
	udpConnect    = 0
	udpAnnounce   = 1
	udpScrape     = 2
	udpError      = 3
	udpAnnounceV6 = 4
)

var udpProtocolID = [8]byte{0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80}

var (
	errUDPMalformed = bittorrent.ClientError("malformed packet")
	errUDPConnID    = bittorrent.ClientError("bad connection id")
	errUDPAction    = bittorrent.ClientError("unknown action")
)

// udpFrontend serves BEP 15 with BEP 41 URL data (the passkey travels as
// "/<passkey>" in the URL data option of announces and scrapes). Several
// workers read the one socket; each handles its packet to the end without
// spawning a goroutine.
type udpFrontend struct {
	logic   frontend.TrackerLogic
	opts    udpfront.ParseOptions
	key     string
	skew    time.Duration
	workers int
	metrics *Metrics
	log     *zap.Logger
	conn    *net.UDPConn
}

func newUDPFrontend(cfg Config, logic frontend.TrackerLogic, m *Metrics, log *zap.Logger) (*udpFrontend, error) {
	key := cfg.UDPConnectionKey
	if key == "" {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		key = hex.EncodeToString(b[:])
	}
	workers := cfg.UDPWorkers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return &udpFrontend{
		logic: logic,
		opts: udpfront.ParseOptions{
			MaxNumWant:          cfg.MaxNumWant,
			DefaultNumWant:      cfg.DefaultNumWant,
			MaxScrapeInfoHashes: cfg.MaxScrapeInfoHashes,
		},
		key:     key,
		skew:    cfg.UDPMaxClockSkew,
		workers: workers,
		metrics: m,
		log:     log,
	}, nil
}

// serve reads until the socket is closed; a read error other than the close
// is returned to the caller.
func (f *udpFrontend) serve(conn *net.UDPConn) error {
	f.conn = conn
	var wg sync.WaitGroup
	errs := make(chan error, f.workers)
	for range f.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- f.worker()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (f *udpFrontend) worker() error {
	gen := udpfront.NewConnectionIDGenerator(f.key)
	in := make([]byte, 2048)
	out := make([]byte, 0, 2048)
	for {
		n, addr, err := f.conn.ReadFromUDPAddrPort(in)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		out = f.handle(gen, in[:n], addr, out[:0])
		if len(out) > 0 {
			_, _ = f.conn.WriteToUDPAddrPort(out, addr)
		}
	}
}

// handle answers one packet into out; an empty result means no answer (a
// packet too short to carry a transaction id is not worth one).
func (f *udpFrontend) handle(gen *udpfront.ConnectionIDGenerator, pkt []byte, addr netip.AddrPort, out []byte) []byte {
	if len(pkt) < 16 {
		f.metrics.dropped[protoUDP].Inc()
		return out
	}
	ipAddr := addr.Addr().Unmap()
	ip := net.IP(ipAddr.AsSlice())
	connID := pkt[0:8]
	act := binary.BigEndian.Uint32(pkt[8:12])
	txID := pkt[12:16]

	if act == udpConnect {
		if [8]byte(connID) != udpProtocolID {
			f.metrics.dropped[protoUDP].Inc()
			return out
		}
		start := time.Now()
		out = appendUDPHeader(out, udpConnect, txID)
		out = append(out, gen.Generate(ip, timecache.Now())...)
		f.metrics.observe(protoUDP, actionConnect, nil, start)
		return out
	}
	if !gen.Validate(connID, ip, timecache.Now(), f.skew) {
		f.metrics.dropped[protoUDP].Inc()
		return appendUDPError(out, txID, errUDPConnID.Error())
	}
	switch act {
	case udpAnnounce, udpAnnounceV6:
		return f.announce(pkt, ip, addr, act == udpAnnounceV6, txID, out)
	case udpScrape:
		return f.scrape(pkt, ipAddr.Is6(), txID, out)
	default:
		f.metrics.dropped[protoUDP].Inc()
		return appendUDPError(out, txID, errUDPAction.Error())
	}
}

func (f *udpFrontend) announce(pkt []byte, ip net.IP, addr netip.AddrPort, v6Action bool, txID, out []byte) []byte {
	start := time.Now()
	var err error
	defer func() { f.metrics.observe(protoUDP, actionAnnounce, err, start) }()

	req, err := udpfront.ParseAnnounce(udpfront.Request{Packet: pkt, IP: ip}, v6Action, f.opts)
	if err != nil {
		return f.errorReply(out, txID, err)
	}
	ctx, resp, err := f.logic.HandleAnnounce(context.Background(), req)
	if err != nil {
		return f.errorReply(out, txID, err)
	}
	act := uint32(udpAnnounce)
	if v6Action {
		act = udpAnnounceV6
	}
	out = appendUDPHeader(out, act, txID)
	out = binary.BigEndian.AppendUint32(out, uint32(resp.Interval/time.Second))
	out = binary.BigEndian.AppendUint32(out, resp.Incomplete)
	out = binary.BigEndian.AppendUint32(out, resp.Complete)
	if req.IP.AddressFamily == bittorrent.IPv6 {
		for _, p := range resp.IPv6Peers {
			out = append(out, p.IP.IP.To16()...)
			out = binary.BigEndian.AppendUint16(out, p.Port)
		}
	} else {
		for _, p := range resp.IPv4Peers {
			out = append(out, p.IP.IP.To4()...)
			out = binary.BigEndian.AppendUint16(out, p.Port)
		}
	}
	// Send before the post hooks: the swarm update need not delay the client.
	_, _ = f.conn.WriteToUDPAddrPort(out, addr)
	f.logic.AfterAnnounce(ctx, req, resp)
	return out[:0]
}

// scrape answers a BEP 15 scrape. Unlike upstream chihaya it accepts BEP 41
// URL data after the info hashes, which is where a private tracker's passkey
// travels.
func (f *udpFrontend) scrape(pkt []byte, v6 bool, txID, out []byte) []byte {
	start := time.Now()
	var err error
	defer func() { f.metrics.observe(protoUDP, actionScrape, err, start) }()

	hashes, urlData, err := parseUDPScrape(pkt[16:], f.opts.MaxScrapeInfoHashes)
	if err != nil {
		return f.errorReply(out, txID, err)
	}
	params, err := bittorrent.ParseURLData(urlData)
	if err != nil {
		return f.errorReply(out, txID, err)
	}
	req := &bittorrent.ScrapeRequest{InfoHashes: hashes, Params: params, AddressFamily: bittorrent.IPv4}
	if v6 {
		req.AddressFamily = bittorrent.IPv6
	}
	ctx, resp, err := f.logic.HandleScrape(context.Background(), req)
	if err != nil {
		return f.errorReply(out, txID, err)
	}
	out = appendUDPHeader(out, udpScrape, txID)
	for _, s := range resp.Files {
		out = binary.BigEndian.AppendUint32(out, s.Complete)
		out = binary.BigEndian.AppendUint32(out, s.Snatches)
		out = binary.BigEndian.AppendUint32(out, s.Incomplete)
	}
	f.logic.AfterScrape(ctx, req, resp)
	return out
}

// parseUDPScrape splits a scrape body into info hashes and BEP 41 URL data.
// The body has no length field for the hashes, so the split is found by
// reading the tail after each multiple of 20 bytes as options: the first
// split whose tail is a complete, well-formed option list carrying URL data
// wins; a body that is an exact multiple of 20 bytes with no such tail is
// all hashes.
func parseUDPScrape(body []byte, maxHashes uint32) ([]bittorrent.InfoHash, string, error) {
	split := -1
	var urlData string
	for k := 20; k <= len(body); k += 20 {
		if k == len(body) {
			break
		}
		if data, ok := parseURLDataOptions(body[k:]); ok && data != "" {
			split, urlData = k, data
			break
		}
	}
	if split < 0 {
		if len(body) == 0 || len(body)%20 != 0 {
			return nil, "", errUDPMalformed
		}
		split = len(body)
	}
	n := split / 20
	if n > int(maxHashes) {
		n = int(maxHashes)
	}
	hashes := make([]bittorrent.InfoHash, n)
	for i := range hashes {
		copy(hashes[i][:], body[20*i:])
	}
	return hashes, urlData, nil
}

// parseURLDataOptions reads a BEP 41 option list: 0 ends it, 1 is padding,
// 2 is <len><bytes> of URL data (concatenated across options). Anything else,
// or a length running past the packet, is not an option list.
func parseURLDataOptions(opts []byte) (string, bool) {
	var data []byte
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0:
			return string(data), true
		case 1:
			i++
		case 2:
			if i+1 >= len(opts) {
				return "", false
			}
			l := int(opts[i+1])
			if i+2+l > len(opts) {
				return "", false
			}
			data = append(data, opts[i+2:i+2+l]...)
			i += 2 + l
		default:
			return "", false
		}
	}
	return string(data), true
}

func (f *udpFrontend) errorReply(out, txID []byte, err error) []byte {
	msg := "internal server error"
	var ce bittorrent.ClientError
	if errors.As(err, &ce) {
		msg = ce.Error()
	} else {
		f.log.Error("udp request failed", zap.Error(err))
	}
	return appendUDPError(out, txID, msg)
}

func appendUDPHeader(out []byte, act uint32, txID []byte) []byte {
	out = binary.BigEndian.AppendUint32(out, act)
	return append(out, txID...)
}

func appendUDPError(out, txID []byte, msg string) []byte {
	out = appendUDPHeader(out, udpError, txID)
	return append(out, msg...)
}
