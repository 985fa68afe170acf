package tracker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"go.uber.org/zap"
)

// The HTTP tracker's own connection loop answers what nearly every client
// sends, a plain GET of an announce or scrape on a keep-alive connection,
// without net/http: no Request, header map or ResponseWriter per request,
// one read and one write each. Anything else on the connection (other
// routes such as receipt intake, HEAD, a body, Expect, an unusual header
// or request line) hands the connection, with the bytes already read, to
// the net/http server, which keeps it from then on. Both run the same
// parser and hooks, so a request gets the same answer either way.

const (
	httpReadBuf = 4 << 10  // a connection's first read buffer
	httpMaxHead = 16 << 10 // request line and headers, as the net/http server's MaxHeaderBytes
	// httpHdrRoom is reserved before a reply's body for its status line
	// and headers, written right-aligned once the length is known.
	httpHdrRoom = 128
)

var errHeadTooLarge = errors.New("request head too large")

// Connection states, for shutdown and the connection limit: an idle
// connection waits for a request and may be closed; an active one finishes
// its request first.
const (
	connActive int32 = iota
	connIdle
	connClosed
)

type httpConn struct {
	f      *httpFrontend
	nc     net.Conn
	rc     syscall.RawConn // nc's descriptor (nil: none), for the tries in httpraw_unix.go
	remote netip.Addr
	buf    []byte  // bytes read; the unanswered ones are buf[r:]
	bufp   *[]byte // buf's pool entry
	r      int
	state  atomic.Int32
	// The deadlines last set: they are renewed only when less than half of
	// their timeout is left, so a keep-alive request usually sets none.
	rdl, wdl time.Time
}

// connQueue is the net/http server's listener: it accepts the connections
// the fast path hands over.
type connQueue struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error { q.once.Do(func() { close(q.done) }); return nil }

func (q *connQueue) Addr() net.Addr { return q.addr }

// push hands c to the net/http server; false once it is shut down.
func (q *connQueue) push(c net.Conn) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.done:
		return false
	}
}

// prefixConn replays the bytes the fast path read before handing over.
// Its state follows net/http's use of it, as httpConn's follows the fast
// path's: idle between requests (from net/http's StateIdle), active once a
// read returns bytes, closed by the connection limit. A read that returns
// bytes after the limit closed it reports the close instead, so net/http
// never serves a request whose reply cannot be written.
type prefixConn struct {
	net.Conn
	rc    syscall.RawConn // Conn's descriptor (nil: none), for inputWaiting
	pre   []byte
	state atomic.Int32
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.pre = p.pre[n:]
		return n, nil
	}
	n, err := p.Conn.Read(b)
	if n > 0 && !p.state.CompareAndSwap(connIdle, connActive) && p.state.Load() == connClosed {
		return 0, net.ErrClosed
	}
	return n, err
}

// conns tracks the open connections, for shutdown and for the limit
// (http_max_conns).
type conns struct {
	mu  sync.Mutex
	set map[*httpConn]struct{}
	ln  net.Listener
	// closing is set (under mu, read without it) when shutdown starts.
	closing atomic.Bool
	// max bounds len(set) plus len(handed), the connections given to
	// net/http and not yet closed by it.
	max    int
	handed map[*prefixConn]struct{}
	// freed is signalled when a connection leaves the count.
	freed sync.Cond
	// paused is set (under mu) while admit looks for an idle connection to
	// close or waits for a place; then a connection that turns idle closes
	// itself to make room. pausedAt is when the wait began (zero: admit
	// has not waited), for its log lines and metric.
	paused   atomic.Bool
	pausedAt time.Time
	metrics  *Metrics
	log      *zap.Logger
}

// evictScan bounds the connections admit looks at for an idle one, on each
// path: map iteration starts at a random entry, so this finds a random idle
// connection in constant time even with the limit full of active ones. One
// missed by the look makes room later, when it next turns idle, or when
// another does.
const evictScan = 64

func (cs *conns) full() bool { return len(cs.set)+len(cs.handed) >= cs.max }

func (cs *conns) remove(c *httpConn) {
	cs.mu.Lock()
	if _, ok := cs.set[c]; ok {
		delete(cs.set, c)
		cs.freed.Signal()
	}
	cs.mu.Unlock()
}

// handOff moves a connection from the loop's set to net/http's, in one
// step so the limit never counts it twice; netState releases it when
// net/http closes it.
func (cs *conns) handOff(c *httpConn, pc *prefixConn) {
	cs.mu.Lock()
	delete(cs.set, c)
	cs.handed[pc] = struct{}{}
	cs.mu.Unlock()
}

// netState follows net/http's connections (its ConnState hook).
func (cs *conns) netState(nc net.Conn, st http.ConnState) {
	pc, ok := nc.(*prefixConn)
	if !ok {
		return
	}
	switch st {
	case http.StateIdle:
		if !pc.state.CompareAndSwap(connActive, connIdle) {
			return // closed
		}
		if cs.paused.Load() {
			cs.makeRoom(pc, func() bool { _, ok := cs.handed[pc]; return ok && cs.evictNet(pc) })
		}
	case http.StateActive:
		// Usually Read has done this already; not for a request that was
		// in net/http's buffer (pipelined).
		pc.state.CompareAndSwap(connIdle, connActive)
	case http.StateClosed, http.StateHijacked:
		cs.mu.Lock()
		if _, ok := cs.handed[pc]; ok {
			delete(cs.handed, pc)
			cs.freed.Signal()
		}
		cs.mu.Unlock()
	}
}

// turnedIdle is called by a fast-path connection that has just become
// idle; false when it closed itself to make room for a paused accept.
func (cs *conns) turnedIdle(c *httpConn) bool {
	if !cs.paused.Load() {
		return true
	}
	return !cs.makeRoom(c.nc, func() bool { _, ok := cs.set[c]; return ok && cs.evict(c) })
}

// makeRoom runs evict (under mu) when accepting is paused at the limit;
// an evicted connection is closed after mu is let go and admit is woken.
func (cs *conns) makeRoom(nc net.Conn, evict func() bool) bool {
	cs.mu.Lock()
	done := cs.paused.Load() && cs.full() && evict()
	if done {
		cs.metrics.httpEvicted.Inc()
		cs.freed.Signal()
	}
	cs.mu.Unlock()
	if done {
		_ = nc.Close()
	}
	return done
}

// admit adds a new connection to the set, within the limit: at the limit
// it closes an idle keep-alive connection to make room or, when it finds
// none, waits until one closes or turns idle (further connections wait in
// the listen backlog meanwhile). False once shutdown starts.
func (cs *conns) admit(c *httpConn) bool {
	cs.mu.Lock()
	for !cs.closing.Load() && cs.full() {
		// Set before looking: a connection that turns idle from here on
		// makes room itself (turnedIdle), so none is missed between the
		// look and the wait.
		cs.paused.Store(true)
		if nc := cs.evictIdle(); nc != nil {
			cs.metrics.httpEvicted.Inc()
			cs.mu.Unlock() // Close waits for the connection's reader to let go
			_ = nc.Close()
			cs.mu.Lock()
			continue
		}
		if cs.pausedAt.IsZero() {
			cs.pausedAt = time.Now()
			cs.metrics.httpPaused.Inc()
			handed := len(cs.handed)
			cs.mu.Unlock() // not holding every connection's close behind a log write
			cs.log.Warn("HTTP connection limit reached and no idle connection found: accepting paused",
				zap.Int("http_max_conns", cs.max), zap.Int("handed_to_net_http", handed))
			cs.mu.Lock()
			continue
		}
		cs.freed.Wait()
	}
	ok := !cs.closing.Load()
	if ok {
		cs.set[c] = struct{}{}
	}
	var waited time.Duration
	if !cs.pausedAt.IsZero() {
		waited = time.Since(cs.pausedAt)
		cs.pausedAt = time.Time{}
	}
	if cs.paused.Load() {
		cs.paused.Store(false)
	}
	cs.mu.Unlock()
	if ok && waited > 0 {
		cs.log.Info("HTTP accepting resumed", zap.Duration("paused", waited))
	}
	return ok
}

// evictIdle takes one idle connection out of the count (under mu) and
// returns it to close: the first idle one of evictScan looked at on each
// path; nil when it finds none.
func (cs *conns) evictIdle() net.Conn {
	n := 0
	for c := range cs.set {
		if cs.evict(c) {
			return c.nc
		}
		if n++; n == evictScan {
			break
		}
	}
	n = 0
	for pc := range cs.handed {
		if cs.evictNet(pc) {
			return pc
		}
		if n++; n == evictScan {
			break
		}
	}
	return nil
}

// evict takes an idle fast-path connection out of the set (under mu), not
// one whose next request already waits in its socket; the caller closes it.
func (cs *conns) evict(c *httpConn) bool {
	if c.state.Load() != connIdle || (c.rc != nil && inputWaiting(c.rc)) {
		return false
	}
	if !c.state.CompareAndSwap(connIdle, connClosed) {
		return false
	}
	delete(cs.set, c)
	return true
}

// evictNet is evict for a connection net/http holds idle.
func (cs *conns) evictNet(pc *prefixConn) bool {
	if pc.state.Load() != connIdle {
		return false
	}
	if pc.rc != nil && inputWaiting(pc.rc) {
		return false
	}
	if !pc.state.CompareAndSwap(connIdle, connClosed) {
		return false
	}
	delete(cs.handed, pc) // its StateClosed then finds nothing to release
	return true
}

// closeIdle closes the idle connections and reports how many are left.
func (cs *conns) closeIdle(all bool) int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for c := range cs.set {
		if all || c.state.CompareAndSwap(connIdle, connClosed) {
			c.state.Store(connClosed)
			_ = c.nc.Close()
		}
	}
	return len(cs.set)
}

// serve accepts on l until shutdown.
func (f *httpFrontend) serve(l net.Listener) error {
	f.conns.mu.Lock()
	if f.conns.closing.Load() {
		f.conns.mu.Unlock()
		_ = l.Close()
		return nil
	}
	f.conns.ln = l
	f.slow = newConnQueue(l.Addr())
	f.conns.mu.Unlock()
	slowErr := make(chan error, 1)
	go func() { slowErr <- f.srv.Serve(f.slow) }()

	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if f.conns.closing.Load() {
				<-slowErr
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				_ = f.srv.Close()
				<-slowErr
				return err
			}
			// Out of descriptors or another transient failure: wait as
			// net/http does, up to a second.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			f.log.Warn("accept failed; retrying", zap.Error(err), zap.Duration("backoff", backoff))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := f.newConn(nc)
		if !f.conns.admit(c) {
			_ = nc.Close()
			continue // shutdown: the next Accept fails
		}
		f.metrics.httpConns.Inc()
		go c.serve()
	}
}

// newConn wraps an accepted connection, with a pooled read buffer.
func (f *httpFrontend) newConn(nc net.Conn) *httpConn {
	bp := f.readBufs.Get().(*[]byte)
	c := &httpConn{f: f, nc: nc, rc: rawOf(nc), bufp: bp, buf: (*bp)[:0]}
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.remote, _ = netip.AddrFromSlice(ta.IP)
		c.remote = c.remote.Unmap() // as net/http's RemoteAddr string has it
	}
	return c
}

// shutdown stops accepting, closes idle connections, lets active requests
// finish until ctx ends (then closes them too), and shuts the net/http
// server down.
func (f *httpFrontend) shutdown(ctx context.Context) error {
	f.conns.mu.Lock()
	f.conns.closing.Store(true)
	f.conns.freed.Broadcast() // an accept loop waiting at the limit
	ln, slow := f.conns.ln, f.slow
	f.conns.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	var err error
	if slow != nil {
		err = f.srv.Shutdown(ctx)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for f.conns.closeIdle(false) > 0 {
		select {
		case <-ctx.Done():
			f.conns.closeIdle(true)
			return ctx.Err()
		case <-tick.C:
		}
	}
	return err
}

func (c *httpConn) serve() {
	f := c.f
	handedOff, replied := false, false
	defer func() {
		f.conns.remove(c)
		f.metrics.httpConns.Dec()
		switch {
		case handedOff:
		case replied:
			c.closeAfterReply()
		default:
			_ = c.nc.Close()
		}
		if cap(c.buf) == httpReadBuf { // not grown for a long head
			*c.bufp = c.buf[:0]
			f.readBufs.Put(c.bufp)
		}
	}()
	for {
		head, err := c.readHead()
		if err != nil {
			if errors.Is(err, errHeadTooLarge) {
				f.metrics.dropped[protoHTTP].Inc()
				c.writeRaw("HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
				replied = true
			}
			return
		}
		h, ok := parseFastHead(head, f.realIPHeader)
		if !ok || f.forceHandoff {
			handedOff = c.handoff()
			return
		}
		c.r += len(head)
		if c.r == len(c.buf) {
			c.buf, c.r = c.buf[:0], 0
		}
		if f.conns.closing.Load() {
			h.close, h.keepAlive = true, false // the last reply says so
		}
		if !c.answer(&h) {
			return
		}
		if h.close {
			replied = true
			return
		}
	}
}

// answer runs one request of the fast path and writes its reply; false
// when the reply could not be written.
func (c *httpConn) answer(h *fastHead) bool {
	f := c.f
	start := time.Now()
	st := f.state()
	bp := f.bufs.Get().(*[]byte)
	b := append((*bp)[:0], make([]byte, httpHdrRoom)...)
	var err error
	var sent bool
	if h.act == actionAnnounce {
		var post postAnnounce
		b, post, err = f.doAnnounce(b, st, context.Background(), h.target, h.passkey, c.remote, h.realIP)
		sent = c.writeReply(b, h, start)
		post.run(f)
	} else {
		var post postScrape
		b, post, err = f.doScrape(b, st, context.Background(), h.target, h.passkey, c.remote)
		sent = c.writeReply(b, h, start)
		post.run(f)
	}
	f.metrics.observe(protoHTTP, h.act, err, start)
	f.end(st)
	f.putBuf(bp, b)
	return sent
}

// writeReply writes a 200 reply whose body is b[httpHdrRoom:].
func (c *httpConn) writeReply(b []byte, h *fastHead, now time.Time) bool {
	var hdr [httpHdrRoom]byte
	x := append(hdr[:0], "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	x = strconv.AppendInt(x, int64(len(b)-httpHdrRoom), 10)
	switch {
	case h.close:
		x = append(x, "\r\nConnection: close\r\n\r\n"...)
	case h.keepAlive:
		x = append(x, "\r\nConnection: keep-alive\r\n\r\n"...)
	default:
		x = append(x, "\r\n\r\n"...)
	}
	out := b[httpHdrRoom-len(x):]
	copy(out, x)
	if c.wdl.IsZero() && c.rc != nil {
		// No write has had to wait on this connection yet: try without a
		// deadline, and set one only if this write would block.
		n := tryWrite(c.rc, out)
		if n == len(out) {
			return true
		}
		out = out[n:]
	}
	c.renewDeadline(&c.wdl, now, c.f.writeTimeout, c.nc.SetWriteDeadline)
	_, err := c.nc.Write(out)
	return err == nil
}

// closeAfterReply closes after a last reply: at once when the client sent
// nothing more (as net/http does), else lingering.
func (c *httpConn) closeAfterReply() {
	if c.rc != nil && c.r == len(c.buf) && !pendingInput(c.rc) {
		_ = c.nc.Close()
		return
	}
	c.lingerClose()
}

// lingerClose half-closes and reads what the client still sends (up to
// 256 KiB or 500 ms) before closing, so that closing with unread input
// does not reset the connection and destroy the reply in flight (as
// net/http's closeWriteAndWait).
func (c *httpConn) lingerClose() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		_ = c.nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, _ = io.Copy(io.Discard, io.LimitReader(c.nc, 256<<10))
	}
	_ = c.nc.Close()
}

func (c *httpConn) writeRaw(s string) {
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.nc.Write(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// handoff gives the connection and its unanswered bytes to net/http.
func (c *httpConn) handoff() bool {
	c.f.metrics.httpHandoffs.Inc()
	_ = c.nc.SetDeadline(time.Time{})
	pc := &prefixConn{Conn: c.nc, rc: c.rc, pre: bytes.Clone(c.buf[c.r:])}
	c.f.conns.handOff(c, pc)
	if !c.f.slow.push(pc) {
		c.f.conns.netState(pc, http.StateClosed)
		return false
	}
	return true
}

// renewDeadline sets *dl to now+d through set when less than half of d is
// left on it (or it is further out than now+d).
func (c *httpConn) renewDeadline(dl *time.Time, now time.Time, d time.Duration, set func(time.Time) error) {
	if d <= 0 {
		return
	}
	want := now.Add(d)
	if !dl.Before(now.Add(d/2)) && !dl.After(want) {
		return
	}
	*dl = want
	_ = set(want)
}

// readHead reads until buf[r:] holds a whole request head and returns it
// (with its blank line).
func (c *httpConn) readHead() ([]byte, error) {
	scan := 0
	var started time.Time
	for {
		data := c.buf[c.r:]
		if n := headEnd(data, scan); n > 0 {
			return data[:n], nil
		}
		if len(data) >= httpMaxHead {
			return nil, errHeadTooLarge
		}
		scan = max(0, len(data)-3)
		if len(c.buf) == cap(c.buf) {
			if c.r > 0 {
				n := copy(c.buf, data)
				c.buf, c.r = c.buf[:n], 0
			} else {
				nb := make([]byte, len(c.buf), min(2*cap(c.buf), httpMaxHead+httpReadBuf))
				copy(nb, c.buf)
				c.buf = nb
			}
		}
		now := time.Now()
		idle := len(data) == 0
		if idle && c.rdl.IsZero() && c.rc != nil {
			// No read has had to wait on this connection yet: its request
			// is likely there already (httpraw_unix.go).
			if n, ok := tryRead(c.rc, c.buf[len(c.buf):cap(c.buf)]); ok {
				if n == 0 {
					return nil, io.EOF
				}
				started = now
				c.buf = c.buf[:len(c.buf)+n]
				continue
			}
		}
		if idle {
			c.renewDeadline(&c.rdl, now, c.f.idleTimeout, c.nc.SetReadDeadline)
			if !c.state.CompareAndSwap(connActive, connIdle) || !c.f.conns.turnedIdle(c) {
				return nil, net.ErrClosed
			}
		} else {
			if started.IsZero() {
				started = now
			}
			if d := c.f.readTimeout; d > 0 && !c.rdl.Equal(started.Add(d)) {
				c.rdl = started.Add(d)
				_ = c.nc.SetReadDeadline(c.rdl)
			}
		}
		n, err := c.nc.Read(c.buf[len(c.buf):cap(c.buf)])
		if idle && !c.state.CompareAndSwap(connIdle, connActive) {
			return nil, net.ErrClosed // shutdown closed it
		}
		if n > 0 && started.IsZero() {
			started = time.Now() // the head began now, not when the wait did
		}
		c.buf = c.buf[:len(c.buf)+n]
		if err != nil && n == 0 {
			return nil, err
		}
	}
}

// headEnd is the length of the request head at the start of b (through
// its blank line, "\r\n\r\n" or bare "\n\n"), 0 when incomplete; the
// search starts at from.
func headEnd(b []byte, from int) int {
	for i := from; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0
		}
		i += j + 1
		if i < len(b) && b[i] == '\n' {
			return i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2
		}
	}
	return 0
}

// fastHead is a request the fast path answers.
type fastHead struct {
	act       action
	target    string // path and query, as sent
	passkey   string
	realIP    string
	close     bool // close after the reply
	keepAlive bool // an HTTP/1.0 client asked to keep the connection
}

// printable: no control bytes, no DEL, no space (a request target).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// fieldValue: a header value's bytes (RFC 9110: visible, space, tab,
// obs-text), no other control byte.
func fieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// isToken: a header name (RFC 9110 tchar).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return s != ""
}

// parseFastHead reads head if it is a request the fast path answers: a GET
// of /announce[/<passkey>] or /scrape[/<passkey>] over HTTP/1.0 or 1.1
// with no body and nothing else needing net/http. The strings point into
// head.
func parseFastHead(head []byte, realIPHeader string) (h fastHead, ok bool) {
	s := unsafe.String(unsafe.SliceData(head), len(head))
	nl := strings.IndexByte(s, '\n')
	line, rest := strings.TrimSuffix(s[:nl], "\r"), s[nl+1:]
	const get = "GET "
	if !strings.HasPrefix(line, get) {
		return h, false
	}
	line = line[len(get):]
	sp := strings.IndexByte(line, ' ')
	if sp < 0 {
		return h, false
	}
	h.target = line[:sp]
	v10 := false
	switch line[sp+1:] {
	case "HTTP/1.1":
	case "HTTP/1.0":
		v10 = true
	default:
		return h, false
	}
	path := h.target
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	var seg string
	switch {
	case path == "/announce":
		h.act = actionAnnounce
	case path == "/scrape":
		h.act = actionScrape
	case strings.HasPrefix(path, "/announce/"):
		h.act, seg = actionAnnounce, path[len("/announce/"):]
	case strings.HasPrefix(path, "/scrape/"):
		h.act, seg = actionScrape, path[len("/scrape/"):]
	default:
		return h, false
	}
	if path != "/announce" && path != "/scrape" {
		// One plain segment: escapes, dot segments and the rest are
		// net/http's ServeMux's to judge.
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "/%#") {
			return h, false
		}
		h.passkey = seg
	}
	if strings.ContainsAny(h.target, " \t#") || !printable(h.target) {
		return h, false
	}
	sawClose, sawKeepAlive, sawRealIP := false, false, false
	for rest != "" {
		nl := strings.IndexByte(rest, '\n')
		if nl < 0 {
			return h, false
		}
		line, rest = strings.TrimSuffix(rest[:nl], "\r"), rest[nl+1:]
		if line == "" {
			break
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return h, false // also obsolete line folding
		}
		name, value := line[:colon], strings.Trim(line[colon+1:], " \t")
		if !fieldValue(value) {
			// A bare CR or another control byte: net/http refuses it
			// (a lenient proxy in front might read it otherwise).
			return h, false
		}
		switch {
		case strings.EqualFold(name, "Connection"):
			for tok := range strings.SplitSeq(value, ",") {
				tok = strings.TrimSpace(tok)
				sawClose = sawClose || strings.EqualFold(tok, "close")
				sawKeepAlive = sawKeepAlive || strings.EqualFold(tok, "keep-alive")
			}
		case strings.EqualFold(name, "Content-Length"):
			if value != "0" {
				return h, false
			}
		case strings.EqualFold(name, "Transfer-Encoding"), strings.EqualFold(name, "Expect"):
			return h, false
		case realIPHeader != "" && !sawRealIP && strings.EqualFold(name, realIPHeader):
			// The first one, as http.Header.Get; an empty value means
			// none.
			h.realIP, sawRealIP = value, true
		}
	}
	switch {
	case sawClose:
		h.close = true
	case v10:
		// HTTP/1.0 closes unless the client asked otherwise; then the
		// reply says it keeps the connection.
		h.close, h.keepAlive = !sawKeepAlive, sawKeepAlive
	}
	return h, true
}
