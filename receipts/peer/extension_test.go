package peer

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/seedpay/seedpay/receipts"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// pair is one connection between an uploader and a downloader Extension,
// each side's messages handed straight to the other's Handle.
type pair struct {
	up, down         *Conn
	failUp, failDown bool // make the side's send fail
	sentByDown       int
}

var ih = [20]byte{1, 2, 3}

func connect(t *testing.T, up, down *Extension) *pair {
	t.Helper()
	p := &pair{}
	p.up = up.NewConn(ih, "down:1", func(b []byte) error {
		if p.failUp {
			return errors.New("connection closed")
		}
		return p.down.Handle(b)
	})
	p.down = down.NewConn(ih, "up:1", func(b []byte) error {
		if p.failDown {
			return errors.New("connection closed")
		}
		p.sentByDown++
		return p.up.Handle(b)
	})
	if err := p.up.Handle(down.Hello()); err != nil {
		t.Fatal(err)
	}
	if err := p.down.Handle(up.Hello()); err != nil {
		t.Fatal(err)
	}
	return p
}

func newExt(t *testing.T, seed byte, c *clock, events *[]Event) *Extension {
	t.Helper()
	e, err := New(testKey(seed), Config{ReceiptEvery: 1 << 20, ReceiptInterval: 2 * time.Second, Now: c.now,
		OnEvent: func(ev Event) {
			if events != nil {
				*events = append(*events, ev)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// newest is the uploader's newest receipt from down, by session.
func newest(t *testing.T, up *Extension) []receipts.Receipt {
	t.Helper()
	return up.Collector().Newest()
}

func TestExtensionSignsEveryMiBAndOnTimer(t *testing.T) {
	c := &clock{t: time.Unix(1795000000, 0)}
	var upEvents []Event
	up, down := newExt(t, 1, c, &upEvents), newExt(t, 2, c, nil)
	p := connect(t, up, down)
	if k, ok := p.down.PeerKey(); !ok || k != up.PublicKey() {
		t.Fatalf("downloader sees key %x (%v), want the uploader's", k, ok)
	}

	p.down.AddReceived(512 << 10)
	if n := down.Tick(); n != 0 {
		t.Fatalf("signed %d receipts for half a MiB before the interval", n)
	}
	p.down.AddReceived(600 << 10)
	if n := down.Tick(); n != 1 {
		t.Fatalf("sent %d receipts after 1.1 MiB, want 1", n)
	}
	rs := newest(t, up)
	if len(rs) != 1 || rs[0].Cumulative != 1112<<10 || rs[0].Downloader != down.PublicKey() || rs[0].Uploader != up.PublicKey() {
		t.Fatalf("uploader holds %+v", rs)
	}
	p.down.AddReceived(100)
	if n := down.Tick(); n != 0 {
		t.Fatal("signed 100 bytes of growth before the interval")
	}
	c.add(2 * time.Second)
	if n := down.Tick(); n != 1 {
		t.Fatal("no receipt for the tail after the interval")
	}
	if n := down.Tick(); n != 0 {
		t.Fatal("signed again without growth")
	}
	if rs := newest(t, up); rs[0].Cumulative != 1112<<10+100 {
		t.Fatalf("uploader's newest %d", rs[0].Cumulative)
	}
	// A flush sends the newest again (the last may have been lost).
	if n := down.Flush(); n != 1 {
		t.Fatalf("flush sent %d, want 1", n)
	}
	if got := len(up.Collector().Pending(0)); got != 1 {
		t.Fatalf("%d pending", got)
	}
	var received int
	for _, e := range upEvents {
		if e.Kind == EventReceiptReceived {
			received++
		}
	}
	if received != 2 {
		t.Fatalf("uploader reported %d newer receipts, want 2 (the flush repeated the last)", received)
	}
}

func TestExtensionCumulativeOverReconnections(t *testing.T) {
	c := &clock{t: time.Unix(1795000000, 0)}
	up, down := newExt(t, 1, c, nil), newExt(t, 2, c, nil)
	p1 := connect(t, up, down)
	p2 := connect(t, up, down) // a second simultaneous connection
	p1.down.AddReceived(3 << 20)
	p2.down.AddReceived(1 << 20)
	down.Tick()
	p1.down.Close()
	p1.down.Close() // idempotent
	// Bytes signed while no connection is open wait for the next one.
	p2.down.AddReceived(2 << 20)
	p2.failDown = true
	if n := down.Tick(); n != 0 {
		t.Fatal("a failed send counted as sent")
	}
	p2.down.Close()
	if n := down.Tick(); n != 0 {
		t.Fatal("sent without a connection")
	}
	us := down.Upstreams()
	if len(us) != 1 || us[0].Received != 6<<20 || us[0].Signed != 6<<20 || us[0].Delivered != 4<<20 || us[0].Live != 0 {
		t.Fatalf("upstreams %+v", us)
	}
	p3 := connect(t, up, down)
	if n := down.Tick(); n != 1 {
		t.Fatal("the waiting receipt was not sent over the new connection")
	}
	p3.down.AddReceived(1 << 20)
	down.Flush()
	rs := newest(t, up)
	if len(rs) != 1 || rs[0].Cumulative != 7<<20 {
		t.Fatalf("uploader holds %+v, want one session at 7 MiB", rs)
	}
	if rs[0].Session != us[0].Session {
		t.Fatal("the session changed across connections")
	}
}

func TestExtensionRefusals(t *testing.T) {
	c := &clock{t: time.Unix(1795000000, 0)}
	var events []Event
	up, down := newExt(t, 1, c, &events), newExt(t, 2, c, nil)
	conn := up.NewConn(ih, "x", func([]byte) error { return nil })
	var zero [32]byte
	for name, payload := range map[string][]byte{
		"own key":     up.Hello(),
		"small order": EncodeHello(zero),
		"garbage":     []byte("nope"),
	} {
		if err := conn.Handle(payload); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := conn.Handle(down.Hello()); err != nil {
		t.Fatal(err)
	}
	if err := conn.Handle(EncodeHello(pubOf(testKey(9)))); err == nil {
		t.Error("a changed key was accepted")
	}
	if err := conn.Handle([]byte("d8:msg_typei42ee")); err != nil {
		t.Errorf("unknown message type: %v", err)
	}
	other := testReceipt(t, testKey(2), pubOf(testKey(9)), 10) // made out to someone else
	if err := conn.Handle(EncodeReceipt(other)); !errors.Is(err, ErrNotForUs) {
		t.Errorf("receipt for another uploader: %v", err)
	}
	bad := testReceipt(t, testKey(2), up.PublicKey(), 10)
	bad.Cumulative++
	if err := conn.Handle(EncodeReceipt(bad)); !errors.Is(err, receipts.ErrBadSignature) {
		t.Errorf("tampered receipt: %v", err)
	}
	wrongTorrent := testReceipt(t, testKey(2), up.PublicKey(), 10)
	wrongTorrent.InfoHash[0] ^= 1
	if err := receipts.Sign(&wrongTorrent, testKey(2)); err != nil {
		t.Fatal(err)
	}
	if err := conn.Handle(EncodeReceipt(wrongTorrent)); err == nil {
		t.Error("a receipt for another torrent was accepted")
	}
	if n := len(up.Collector().Newest()); n != 0 {
		t.Fatalf("collector holds %d receipts", n)
	}
	refused := 0
	for _, e := range events {
		if e.Kind == EventRefused {
			refused++
		}
	}
	if refused != 7 {
		t.Errorf("%d refused events, want 7", refused)
	}
	if _, err := New(testKey(1)[:10], Config{}); err == nil {
		t.Error("New accepted a short key")
	}
}

func TestCollector(t *testing.T) {
	upKey := testKey(1)
	up := pubOf(upKey)
	col := NewCollector(up)
	r5, r9 := testReceipt(t, testKey(2), up, 5), testReceipt(t, testKey(2), up, 9)
	r9.Session = r5.Session
	if err := receipts.Sign(&r9, testKey(2)); err != nil {
		t.Fatal(err)
	}
	if ok, err := col.Add(r5); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, err := col.Add(r5); ok || err != nil {
		t.Fatal("the same receipt again is not newer", ok, err)
	}
	other := testReceipt(t, testKey(3), up, 1)
	col.Add(other)
	if p := col.Pending(0); len(p) != 2 {
		t.Fatalf("pending %d", len(p))
	}
	if p := col.Pending(1); len(p) != 1 {
		t.Fatalf("pending(1) %d", len(p))
	}
	col.Answered(r5, false, 3)
	col.Answered(other, true, 2) // retry once more
	if p := col.Pending(0); len(p) != 1 || p[0] != other {
		t.Fatalf("pending %+v", p)
	}
	col.Answered(other, true, 2) // second retry: given up
	if p := col.Pending(0); len(p) != 0 {
		t.Fatalf("pending %+v after giving up", p)
	}
	if ok, _ := col.Add(r9); !ok {
		t.Fatal("a higher count did not supersede")
	}
	col.Answered(r5, false, 3) // a late answer for the superseded one changes nothing
	if p := col.Pending(0); len(p) != 1 || p[0].Cumulative != 9 {
		t.Fatalf("pending %+v, want the 9-byte receipt", p)
	}
}
