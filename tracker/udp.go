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
	"syscall"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/frontend"
	"github.com/chihaya/chihaya/pkg/timecache"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/seedpay/seedpay/internal/reqctx"
)

// BEP 15 actions; 4 is opentracker's old IPv6 announce.
const (
	udpConnect    = 0
	udpAnnounce   = 1
	udpScrape     = 2
	udpError      = 3
	udpAnnounceV6 = 4
)

// udpMaxPacket is the largest request read; longer datagrams are dropped
// (counted as truncated).
const udpMaxPacket = 2048

var udpProtocolID = [8]byte{0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80}

// v4InV6Prefix starts an IPv4-mapped IPv6 address (::ffff:a.b.c.d).
var v4InV6Prefix = [12]byte{10: 0xff, 11: 0xff}

// udpFrontend serves BEP 15 with BEP 41 URL data (the passkey travels as
// "/<passkey>" in the URL data option of announces and scrapes). Workers
// read one or several SO_REUSEPORT sockets, in batches (recvmmsg/sendmmsg)
// on Linux; each handles its packets to the end without spawning a
// goroutine, with a request, response, context and buffers of its own that
// it reuses, so an announce through Logic allocates nothing.
type udpFrontend struct {
	into       intoLogic
	maxNumWant uint32
	maxScrape  uint32
	key        string
	skew       time.Duration
	workers    int
	batch      int
	replyCap   int
	metrics    *Metrics
	log        *zap.Logger
	dropLog    [numUDPDrops]logThrottle
	fails      failLog
	onBatch    func(n int) // tests: called with each batch's datagram count
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
	batch := cfg.UDPBatch
	if batch == 0 {
		batch = DefaultUDPBatch
	}
	f := &udpFrontend{
		maxNumWant: cfg.MaxNumWant,
		maxScrape:  cfg.MaxScrapeInfoHashes,
		key:        key,
		skew:       cfg.UDPMaxClockSkew,
		workers:    workers,
		batch:      batch,
		// The largest reply: an IPv6 announce with every peer, or a full scrape.
		replyCap: max(20+18*int(cfg.MaxNumWant), 8+12*int(cfg.MaxScrapeInfoHashes), 512),
		metrics:  m,
		log:      log,
	}
	f.into = intoOf(logic)
	return f, nil
}

// serve reads until the sockets are closed; a read error other than the
// close is returned to the caller (after every worker has stopped).
func (f *udpFrontend) serve(conns []*net.UDPConn) error {
	var wg sync.WaitGroup
	n := max(f.workers, len(conns))
	errs := make(chan error, n)
	for i := range n {
		conn := conns[i%len(conns)]
		w := f.newWorker()
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if f.batch > 1 {
				err = w.serveBatch(conn, f.batch)
			} else {
				err = w.serveOne(conn)
			}
			if err != nil {
				// One failed reader stops them all: Serve reports it.
				for _, c := range conns {
					_ = c.Close()
				}
			}
			errs <- err
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

// readErr sorts a read error: nil to retry, errStop to end quietly, or the
// error itself.
func readErr(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return errStop
	}
	if isLowMemory(err) {
		return errLowMemory
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return err
}

var errStop = errors.New("udp: socket closed")

// errLowMemory: the kernel had no buffer for a read (ENOBUFS, ENOMEM). It
// passes: the worker counts it, waits lowMemoryPause and reads on.
var errLowMemory = errors.New("udp: no kernel memory for the read")

const lowMemoryPause = 10 * time.Millisecond

func isLowMemory(err error) bool {
	return errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// pauseLowMemory counts and logs a read that failed for want of kernel
// memory and waits before the next one, so a lasting shortage does not
// spin the worker.
func (f *udpFrontend) pauseLowMemory(err error) {
	f.drop(dropReadError, 1, err)
	time.Sleep(lowMemoryPause)
}

// serveOne is the portable loop: one read and one write per packet.
func (w *udpWorker) serveOne(conn *net.UDPConn) error {
	in := make([]byte, udpMaxPacket+1) // a full buffer: the datagram was longer
	out := make([]byte, 0, w.f.replyCap)
	for {
		n, addr, err := conn.ReadFromUDPAddrPort(in)
		if err != nil {
			if err = readErr(err); err == errStop {
				return nil
			} else if err == errLowMemory {
				w.f.pauseLowMemory(err)
			} else if err != nil {
				return err
			}
			continue
		}
		if n > udpMaxPacket {
			w.f.drop(dropTruncated, 1, nil)
			continue
		}
		out = w.handle(in[:n], addr, out[:0])
		if len(out) > 0 {
			if _, err := conn.WriteToUDPAddrPort(out, addr); err != nil {
				w.f.drop(dropSendError, 1, err)
			}
		}
	}
}

// drop counts n datagrams or replies dropped for reason and logs them,
// throttled: at debug level, but send errors (ours, perhaps) as warnings.
func (f *udpFrontend) drop(reason udpDrop, n int, err error) {
	f.metrics.udpDropped[reason].Add(float64(n))
	ok, held := f.dropLog[reason].allow(timecache.NowUnixNano(), int64(n))
	if !ok {
		return
	}
	lvl := zapcore.DebugLevel
	if reason == dropSendError || reason == dropReadError {
		lvl = zapcore.WarnLevel
	}
	if ce := f.log.Check(lvl, "udp datagrams dropped"); ce != nil {
		ce.Write(zap.String("reason", udpDropNames[reason]), zap.Int("count", n), zap.Int64("suppressed", held), zap.Error(err))
	}
}

// udpWorker is one reader's reusable state. Nothing in it may be kept by a
// hook past the request (the account hook copies what it buffers).
type udpWorker struct {
	f      *udpFrontend
	gen    *connIDGen
	ctx    reqctx.Ctx
	params urlParams
	ip     [16]byte
	areq   bittorrent.AnnounceRequest
	aresp  bittorrent.AnnounceResponse
	peers  []bittorrent.Peer
	sreq   bittorrent.ScrapeRequest
	sresp  bittorrent.ScrapeResponse
	hashes []bittorrent.InfoHash
	files  []bittorrent.Scrape
}

func (f *udpFrontend) newWorker() *udpWorker {
	return &udpWorker{
		f:      f,
		gen:    newConnIDGen(f.key),
		params: urlParams{buf: make([]byte, 0, 256)},
		// One more than the most wanted: the Responder asks for one extra.
		peers:  make([]bittorrent.Peer, 0, f.maxNumWant+1),
		hashes: make([]bittorrent.InfoHash, 0, f.maxScrape),
		files:  make([]bittorrent.Scrape, 0, f.maxScrape),
	}
}

// handle answers one packet into out, running the post hooks before it
// returns; an empty result means no answer (a packet too short to carry a
// transaction id is not worth one).
func (w *udpWorker) handle(pkt []byte, addr netip.AddrPort, out []byte) []byte {
	f := w.f
	if len(pkt) < 16 {
		f.metrics.dropped[protoUDP].Inc()
		return out
	}
	var src []byte
	if a := addr.Addr().Unmap(); a.Is4() {
		b := a.As4()
		src = w.ip[:copy(w.ip[:], b[:])]
	} else {
		b := a.As16()
		src = w.ip[:copy(w.ip[:], b[:])]
	}
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
		out = w.gen.appendID(out, src, timecache.Now())
		f.metrics.observe(protoUDP, actionConnect, nil, start)
		return out
	}
	if !w.gen.valid(connID, src, timecache.Now(), f.skew) {
		f.metrics.dropped[protoUDP].Inc()
		return appendUDPError(out, txID, errUDPConnID.Error())
	}
	switch act {
	case udpAnnounce, udpAnnounceV6:
		return w.announce(pkt, src, act, txID, out)
	case udpScrape:
		return w.scrape(pkt, len(src) == 16, txID, out)
	default:
		f.metrics.dropped[protoUDP].Inc()
		return appendUDPError(out, txID, errUDPAction.Error())
	}
}

func (w *udpWorker) announce(pkt, src []byte, act uint32, txID, out []byte) []byte {
	f := w.f
	start := time.Now()
	var err error
	defer func() { f.metrics.observe(protoUDP, actionAnnounce, err, start) }()

	req := &w.areq
	if err = parseUDPAnnounce(pkt, act == udpAnnounceV6, src, f.maxNumWant, req, &w.ip, &w.params); err != nil {
		return f.errorReply(out, txID, actionAnnounce, err)
	}
	w.ctx.Reset(context.Background())
	resp := &w.aresp
	*resp = bittorrent.AnnounceResponse{IPv4Peers: w.peers[:0], IPv6Peers: w.peers[:0]}
	ctx, err := f.into.announceInto(&w.ctx, req, resp)
	if err != nil {
		return f.errorReply(out, txID, actionAnnounce, err)
	}
	out = appendUDPHeader(out, act, txID)
	out = binary.BigEndian.AppendUint32(out, uint32(resp.Interval/time.Second))
	out = binary.BigEndian.AppendUint32(out, resp.Incomplete)
	out = binary.BigEndian.AppendUint32(out, resp.Complete)
	// Peers are the requester's address family (BEP 15: IPv6 requesters
	// get 18-byte entries). Action 4 asks for 18-byte entries whatever
	// the family (opentracker's IPv6 announce), so an IPv4 requester using
	// it gets its IPv4 peers as IPv4-mapped IPv6 addresses: chihaya would
	// send 6-byte entries under the action 4 header, which such a client
	// misreads.
	switch {
	case req.IP.AddressFamily == bittorrent.IPv6:
		for i := range resp.IPv6Peers {
			p := &resp.IPv6Peers[i]
			out = append(out, p.IP.IP.To16()...)
			out = binary.BigEndian.AppendUint16(out, p.Port)
		}
	case act == udpAnnounceV6:
		for i := range resp.IPv4Peers {
			p := &resp.IPv4Peers[i]
			out = append(out, v4InV6Prefix[:]...)
			out = append(out, p.IP.IP.To4()...)
			out = binary.BigEndian.AppendUint16(out, p.Port)
		}
	default:
		for i := range resp.IPv4Peers {
			p := &resp.IPv4Peers[i]
			out = append(out, p.IP.IP.To4()...)
			out = binary.BigEndian.AppendUint16(out, p.Port)
		}
	}
	if err := f.into.afterAnnounce(ctx, req, resp); err != nil {
		f.fails.postHooksFailed(f.log, f.metrics, protoUDP, actionAnnounce, err)
	}
	return out
}

// scrape answers a BEP 15 scrape. Unlike upstream chihaya it accepts BEP 41
// URL data after the info hashes, which is where a private tracker's passkey
// travels.
func (w *udpWorker) scrape(pkt []byte, v6 bool, txID, out []byte) []byte {
	f := w.f
	start := time.Now()
	var err error
	defer func() { f.metrics.observe(protoUDP, actionScrape, err, start) }()

	hashes, err := parseUDPScrape(pkt[16:], f.maxScrape, w.hashes[:0], &w.params)
	if err == nil {
		err = w.params.parse()
	}
	if err != nil {
		return f.errorReply(out, txID, actionScrape, err)
	}
	req := &w.sreq
	*req = bittorrent.ScrapeRequest{InfoHashes: hashes, Params: w.params.get(), AddressFamily: bittorrent.IPv4}
	if v6 {
		req.AddressFamily = bittorrent.IPv6
	}
	w.ctx.Reset(context.Background())
	resp := &w.sresp
	resp.Files = w.files[:0]
	ctx, err := f.into.scrapeInto(&w.ctx, req, resp)
	if err != nil {
		return f.errorReply(out, txID, actionScrape, err)
	}
	out = appendUDPHeader(out, udpScrape, txID)
	for _, s := range resp.Files {
		out = binary.BigEndian.AppendUint32(out, s.Complete)
		out = binary.BigEndian.AppendUint32(out, s.Snatches)
		out = binary.BigEndian.AppendUint32(out, s.Incomplete)
	}
	if err := f.into.afterScrape(ctx, req, resp); err != nil {
		f.fails.postHooksFailed(f.log, f.metrics, protoUDP, actionScrape, err)
	}
	return out
}

// errorReply answers a failed request of action a: a client error with its
// reason, an internal one with a generic text (and a throttled log).
func (f *udpFrontend) errorReply(out, txID []byte, a action, err error) []byte {
	msg := "internal server error"
	var ce bittorrent.ClientError
	if errors.As(err, &ce) {
		msg = ce.Error()
	} else {
		f.fails.requestFailed(f.log, a, err)
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
