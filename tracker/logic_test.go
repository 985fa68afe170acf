package tracker

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/chihaya/chihaya/frontend/http/bencode"
	"github.com/chihaya/chihaya/pkg/timecache"
	"go.uber.org/zap"
)

// captureConn is a net.Conn that keeps the last write.
type captureConn struct {
	discardConn
	last []byte
}

func (c *captureConn) Write(b []byte) (int, error) {
	c.last = append(c.last[:0], b...)
	return len(b), nil
}

// TestChihayaLogicThroughAdapter: both frontends run chihaya's own
// middleware.Logic through logicAdapter: the passkey reaches the auth hook
// (an unknown one is refused), and the swarm grows with each announce.
func TestChihayaLogicThroughAdapter(t *testing.T) {
	t.Run("http", func(t *testing.T) {
		logic, m := newChihayaLogic(t)
		f := newHTTPFrontend(DefaultConfig(), logic, m, zap.NewNop())
		if _, ok := f.into.(logicAdapter); !ok {
			t.Fatalf("into is %T, want the adapter", f.into)
		}
		cc := &captureConn{}
		c := &httpConn{f: f, nc: cc, remote: netip.MustParseAddr("10.0.0.1")}
		body := func() bencode.Dict {
			i := bytes.Index(cc.last, []byte("\r\n\r\n"))
			d, err := bencode.Unmarshal(cc.last[i+4:])
			if err != nil {
				t.Fatalf("%q: %v", cc.last, err)
			}
			return d.(bencode.Dict)
		}
		heads := fastAnnounces()
		for i := range 3 {
			fastAnnounce(t, c, heads[i])
			if d := body(); d["complete"].(int64)+d["incomplete"].(int64) != int64(i+1) {
				t.Fatalf("announce %d: %v", i, d)
			}
		}
		a := announce{peerID: peerID(9), ih: ihX, port: 9, numwant: 5, compact: true}
		fastAnnounce(t, c, []byte("GET /announce/nosuchkey?"+a.query()+" HTTP/1.1\r\n\r\n"))
		if d := body(); d["failure reason"] == nil {
			t.Fatalf("unknown passkey answered %v", d)
		}
	})
	t.Run("udp", func(t *testing.T) {
		logic, m := newChihayaLogic(t)
		f, err := newUDPFrontend(DefaultConfig(), logic, m, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		w := f.newWorker()
		to := netip.MustParseAddrPort("10.0.0.1:5000")
		a4 := to.Addr().As4()
		c := &udpClient{connID: [8]byte(w.gen.appendID(nil, a4[:], timecache.Now()))}
		for i := range 3 {
			out := w.handle(c.announcePacket(announce{peerID: peerID(i), ih: ihX, port: uint16(100 + i), left: 1, numwant: 50}, "/"+fuzzPasskey), to, nil)
			if binary.BigEndian.Uint32(out) != udpAnnounce || binary.BigEndian.Uint32(out[12:]) != uint32(i+1) {
				t.Fatalf("announce %d: %x", i, out)
			}
		}
		out := w.handle(c.announcePacket(announce{peerID: peerID(9), ih: ihX, port: 9, numwant: 5}, "/nosuchkey"), to, nil)
		if binary.BigEndian.Uint32(out) != udpError {
			t.Fatalf("unknown passkey answered %x", out)
		}
	})
}
