package peer

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seedpay/seedpay/receipts"
)

// Config tunes when a downloader signs.
type Config struct {
	// ReceiptEvery: sign once this many more bytes arrived from an uploader
	// (default 1 MiB).
	ReceiptEvery uint64
	// ReceiptInterval: sign any growth at least this often (default 2s), so
	// the tail of a transfer is covered soon after it ends.
	ReceiptInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnEvent, when set, is told what happens (for logs); it must not block
	// and must not call back into the Extension.
	OnEvent func(Event)
}

// Event kinds passed to Config.OnEvent.
const (
	EventHello           = "hello"            // a peer told us its key
	EventReceiptSent     = "receipt_sent"     // we signed and sent a receipt to an uploader
	EventReceiptReceived = "receipt_received" // a downloader sent us a newer receipt
	EventRefused         = "refused"          // a peer's message was refused
)

// Event is something the extension did or saw.
type Event struct {
	Kind       string
	Remote     string   // the connection's peer address
	InfoHash   [20]byte //
	Key        [32]byte // the peer's key (hello, receipt_received: the downloader; receipt_sent: the uploader)
	Session    [8]byte
	Cumulative uint64
	Err        error
}

// An Extension runs the seedpay_receipt protocol for one client and key,
// over any number of torrents and peer connections. It does no I/O of its
// own: the BitTorrent engine creates a Conn per peer connection, feeds it
// the peer's extension messages and the piece bytes received, and calls
// Tick from time to time; a Conn sends through the function it was given.
//
// As a downloader it counts, per (torrent, uploader key), the bytes
// received over every connection whose peer said that key, and signs a
// fresh cumulative receipt (one receipts.Issuer, hence one session, per
// pair for the life of the Extension) every ReceiptEvery bytes or
// ReceiptInterval, sending it to the uploader over one of its
// connections. As an uploader it hands the receipts it receives to its
// Collector.
type Extension struct {
	key       ed25519.PrivateKey
	pub       [32]byte
	cfg       Config
	collector *Collector

	mu  sync.Mutex
	ups map[upKey]*upstream
}

type upKey struct {
	infoHash [20]byte
	uploader [32]byte
}

// upstream is the downloader's account of one uploader on one torrent.
type upstream struct {
	infoHash  [20]byte
	issuer    *receipts.Issuer
	closed    uint64 // bytes from connections that have closed
	live      map[*Conn]struct{}
	signed    uint64 // newest signed cumulative
	signedAt  time.Time
	last      *receipts.Receipt // the newest signed
	unsent    *receipts.Receipt // signed, not yet handed to a connection
	delivered uint64            // newest cumulative handed to a connection
}

// New returns an Extension signing with key (an ed25519 private key).
func New(key ed25519.PrivateKey, cfg Config) (*Extension, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("peer: private key of %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	var pub [32]byte
	copy(pub[:], key.Public().(ed25519.PublicKey))
	if err := receipts.CheckPublicKey(pub[:]); err != nil {
		return nil, err
	}
	if cfg.ReceiptEvery == 0 {
		cfg.ReceiptEvery = 1 << 20
	}
	if cfg.ReceiptInterval <= 0 {
		cfg.ReceiptInterval = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Extension{key: key, pub: pub, cfg: cfg, collector: NewCollector(pub), ups: map[upKey]*upstream{}}, nil
}

// PublicKey is the key peers sign our receipts for.
func (e *Extension) PublicKey() [32]byte { return e.pub }

// Collector holds the receipts peers sent us.
func (e *Extension) Collector() *Collector { return e.collector }

// Hello is the message that tells a peer our key: send it once the peer's
// BEP 10 handshake lists ExtensionName.
func (e *Extension) Hello() []byte { return EncodeHello(e.pub) }

func (e *Extension) event(ev Event) {
	if e.cfg.OnEvent != nil {
		e.cfg.OnEvent(ev)
	}
}

// A Conn is one peer connection on one torrent.
type Conn struct {
	ext      *Extension
	infoHash [20]byte
	remote   string
	send     func([]byte) error
	received atomic.Uint64

	// guarded by ext.mu
	key    [32]byte
	keyed  bool
	closed bool
}

// NewConn registers a peer connection on torrent infoHash. send delivers
// one extension payload to the peer (e.g. anacrolix's
// PeerConn.WriteExtendedMessage(ExtensionName, ...)); it is only called
// from Tick and Flush, never with the Extension's lock held.
func (e *Extension) NewConn(infoHash [20]byte, remote string, send func([]byte) error) *Conn {
	return &Conn{ext: e, infoHash: infoHash, remote: remote, send: send}
}

// AddReceived counts n bytes of piece data received from the peer (only
// data we wanted: not duplicates). Cheap: call it per block.
func (c *Conn) AddReceived(n uint64) { c.received.Add(n) }

// Received is the piece data received on this connection so far.
func (c *Conn) Received() uint64 { return c.received.Load() }

// PeerKey is the key the peer said in its hello.
func (c *Conn) PeerKey() ([32]byte, bool) {
	c.ext.mu.Lock()
	defer c.ext.mu.Unlock()
	return c.key, c.keyed
}

// Handle processes one seedpay_receipt payload from the peer. Errors are
// the peer's fault and only worth a log line (or, if frequent, dropping
// the peer); an unknown message type is ignored without an error.
func (c *Conn) Handle(payload []byte) error {
	m, err := DecodeMessage(payload)
	if errors.Is(err, ErrUnknownType) {
		return nil
	}
	if err != nil {
		c.ext.event(Event{Kind: EventRefused, Remote: c.remote, InfoHash: c.infoHash, Err: err})
		return err
	}
	switch m.Type {
	case MsgHello:
		err = c.hello(m.Key)
	case MsgReceipt:
		err = c.receipt(m.Receipt)
	}
	if err != nil {
		c.ext.event(Event{Kind: EventRefused, Remote: c.remote, InfoHash: c.infoHash, Err: err})
	}
	return err
}

func (c *Conn) hello(key [32]byte) error {
	e := c.ext
	if err := receipts.CheckPublicKey(key[:]); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	if key == e.pub {
		return errors.New("hello: the peer has our own key")
	}
	e.mu.Lock()
	switch {
	case c.closed:
		e.mu.Unlock()
		return nil
	case c.keyed && c.key != key:
		e.mu.Unlock()
		return errors.New("hello: the peer changed its key")
	case c.keyed:
		e.mu.Unlock()
		return nil
	}
	c.key, c.keyed = key, true
	k := upKey{c.infoHash, key}
	u := e.ups[k]
	if u == nil {
		u = &upstream{infoHash: c.infoHash, issuer: receipts.NewIssuer(e.key, c.infoHash, key), live: map[*Conn]struct{}{},
			signedAt: e.cfg.Now()} // the interval runs from the first hello
		e.ups[k] = u
	}
	u.live[c] = struct{}{}
	e.mu.Unlock()
	e.event(Event{Kind: EventHello, Remote: c.remote, InfoHash: c.infoHash, Key: key})
	return nil
}

func (c *Conn) receipt(r receipts.Receipt) error {
	if r.InfoHash != c.infoHash {
		return errors.New("receipt: for another torrent than this connection's")
	}
	newer, err := c.ext.collector.Add(r)
	if err != nil {
		return fmt.Errorf("receipt: %w", err)
	}
	if newer {
		c.ext.event(Event{Kind: EventReceiptReceived, Remote: c.remote, InfoHash: r.InfoHash, Key: r.Downloader,
			Session: r.Session, Cumulative: r.Cumulative})
	}
	return nil
}

// Close ends the connection: its bytes stay counted for the uploader, and
// later receipts go over the uploader's other (or next) connections.
func (c *Conn) Close() {
	e := c.ext
	e.mu.Lock()
	defer e.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	if !c.keyed {
		return
	}
	u := e.ups[upKey{c.infoHash, c.key}]
	delete(u.live, c)
	u.closed += c.received.Load()
}

// total is the bytes received from u over all its connections; e.mu held.
func (u *upstream) total() uint64 {
	n := u.closed
	for c := range u.live {
		n += c.received.Load()
	}
	return n
}

// Tick signs receipts that are due and sends them: every ReceiptEvery
// bytes of growth, or any growth after ReceiptInterval. Call it often
// (e.g. every 100-250 ms); it returns the number of receipts sent.
func (e *Extension) Tick() int { return e.run(false) }

// Flush signs every uploader's current count now, whatever the thresholds,
// and sends it: call it before closing connections (shutdown, torrent
// removed, download complete).
func (e *Extension) Flush() int { return e.run(true) }

type delivery struct {
	u    *upstream
	conn *Conn
	r    receipts.Receipt
}

func (e *Extension) run(force bool) int {
	now := e.cfg.Now()
	var out []delivery
	e.mu.Lock()
	for _, u := range e.ups {
		if n := u.total(); n > u.signed &&
			(force || n-u.signed >= e.cfg.ReceiptEvery || now.Sub(u.signedAt) >= e.cfg.ReceiptInterval) {
			r, err := u.issuer.Receipt(n, now)
			if err != nil { // only a malformed key or a decreasing count: neither happens here
				e.event(Event{Kind: EventRefused, InfoHash: u.infoHash, Err: err})
				continue
			}
			u.signed, u.signedAt, u.unsent, u.last = n, now, &r, &r
		}
		if u.unsent == nil && force && u.last != nil {
			u.unsent = u.last // a flush sends the newest again: the last one may have been lost with its connection
		}
		if u.unsent == nil {
			continue
		}
		for c := range u.live { // any live connection of the uploader will do
			out = append(out, delivery{u, c, *u.unsent})
			u.unsent = nil
			break
		}
	}
	e.mu.Unlock()
	sent := 0
	for _, d := range out {
		err := d.conn.send(EncodeReceipt(d.r))
		e.mu.Lock()
		switch {
		case err != nil:
			if d.u.unsent == nil || d.u.unsent.Cumulative < d.r.Cumulative {
				r := d.r
				d.u.unsent = &r // try again, maybe over another connection
			}
		case d.r.Cumulative > d.u.delivered:
			d.u.delivered = d.r.Cumulative
		}
		e.mu.Unlock()
		if err != nil {
			e.event(Event{Kind: EventRefused, Remote: d.conn.remote, InfoHash: d.r.InfoHash, Key: d.r.Uploader, Err: fmt.Errorf("sending a receipt: %w", err)})
			continue
		}
		sent++
		e.event(Event{Kind: EventReceiptSent, Remote: d.conn.remote, InfoHash: d.r.InfoHash, Key: d.r.Uploader,
			Session: d.r.Session, Cumulative: d.r.Cumulative})
	}
	return sent
}

// Upstream is the downloader's account of one uploader on one torrent.
type Upstream struct {
	InfoHash  [20]byte
	Uploader  [32]byte
	Session   [8]byte
	Received  uint64 // piece bytes received from the uploader's connections
	Signed    uint64 // newest cumulative signed
	Delivered uint64 // newest cumulative handed to a connection
	Live      int    // open connections
}

// Upstreams reports every uploader we have received from or opened a
// connection with, by torrent and key.
func (e *Extension) Upstreams() []Upstream {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Upstream, 0, len(e.ups))
	for k, u := range e.ups {
		out = append(out, Upstream{InfoHash: k.infoHash, Uploader: k.uploader, Session: u.issuer.Session(),
			Received: u.total(), Signed: u.signed, Delivered: u.delivered, Live: len(u.live)})
	}
	return out
}
