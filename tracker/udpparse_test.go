package tracker

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/chihaya/chihaya/bittorrent"
)

// refUDPScrape is parseUDPScrape's definition, written the slow way: try
// the tail after each multiple of 20 bytes as an option list, the first
// one carrying URL data that starts with '/' wins.
func refUDPScrape(body []byte, maxHashes int) (hashes [][]byte, urlData []byte, ok bool) {
	if len(body) == 0 || len(body) > udpMaxPacket-16 {
		return nil, nil, false
	}
	split := -1
	for k := 20; k < len(body) && split < 0; k += 20 {
		if d, ok := refOptions(body[k:]); ok && len(d) > 0 && d[0] == '/' {
			split, urlData = k, d
		}
	}
	if split < 0 {
		if len(body)%20 != 0 {
			return nil, nil, false
		}
		split = len(body)
	}
	for i := 0; i < split/20 && i < maxHashes; i++ {
		hashes = append(hashes, body[20*i:20*i+20])
	}
	return hashes, urlData, true
}

// refOptions reads a BEP 41 option list: its URL data, and whether it is
// complete and well formed.
func refOptions(opts []byte) (urlData []byte, ok bool) {
	for len(opts) > 0 {
		switch opts[0] {
		case 0:
			return urlData, true
		case 1:
			opts = opts[1:]
		case 2:
			if len(opts) < 2 || len(opts) < 2+int(opts[1]) {
				return nil, false
			}
			urlData = append(urlData, opts[2:2+int(opts[1])]...)
			opts = opts[2+int(opts[1]):]
		default:
			return nil, false
		}
	}
	return urlData, true
}

// FuzzUDPScrapeParse checks the scrape parser against refUDPScrape on any
// body (no panic, the same hashes and URL data, no more hashes than asked
// for or than the body holds, hashes that are the body's bytes), then
// builds a scrape from the body's hashes and a path and checks that it
// parses back to exactly those.
func FuzzUDPScrapeParse(f *testing.F) {
	const maxHashes = 50
	var params urlParams
	dst := make([]bittorrent.InfoHash, 0, maxHashes)
	f.Fuzz(func(t *testing.T, body []byte, path string) {
		hashes, err := parseUDPScrape(body, maxHashes, dst[:0], &params)
		want, wantData, ok := refUDPScrape(body, maxHashes)
		if (err == nil) != ok {
			t.Fatalf("error %v, reference ok %v", err, ok)
		}
		if err != nil {
			return
		}
		if len(hashes) > maxHashes || len(hashes) > len(body)/20 || len(params.buf) > udpMaxURLData || len(params.buf) > len(body) {
			t.Fatalf("%d hashes and %d bytes of URL data from %d bytes", len(hashes), len(params.buf), len(body))
		}
		if len(hashes) != len(want) || !bytes.Equal(params.buf, wantData) {
			t.Fatalf("%d hashes, URL data %q; reference %d, %q", len(hashes), params.buf, len(want), wantData)
		}
		for i, ih := range hashes {
			if !bytes.Equal(ih[:], body[20*i:20*i+20]) || !bytes.Equal(ih[:], want[i]) {
				t.Fatalf("hash %d = %x, body has %x", i, ih, body[20*i:20*i+20])
			}
		}

		// Round trip: hashes (none after the first starting like an option
		// list) then URL data.
		m := min(len(body)/20, maxHashes)
		if m == 0 {
			return
		}
		in := append([]byte(nil), body[:20*m]...)
		for i := 20; i < len(in); i += 20 {
			if in[i] == 1 || in[i] == 2 {
				in[i] = 3
			}
		}
		p := "/" + path[:min(len(path), 900)]
		pkt := append(append([]byte(nil), in...), urlDataOption(p)...)
		hashes, err = parseUDPScrape(pkt, maxHashes, dst[:0], &params)
		if err != nil || len(hashes) != m || string(params.buf) != p {
			t.Fatalf("round trip of %d hashes and %q: %d hashes, %q, %v", m, p, len(hashes), params.buf, err)
		}
		for i, ih := range hashes {
			if !bytes.Equal(ih[:], in[20*i:20*i+20]) {
				t.Fatalf("round trip: hash %d = %x, sent %x", i, ih, in[20*i:20*i+20])
			}
		}
	})
}

// The connection id's tag is the CBC-MAC (zero IV, zero padding) under the
// derived AES key of time || IP length || IP, computed here with
// crypto/cipher's CBC mode; it depends on the key, the time and every byte
// of the address.
func TestConnIDTag(t *testing.T) {
	g := newConnIDGen("k1")
	k := sha256.Sum256([]byte("seedpay BEP 15 connection id\x00k1"))
	block, err := aes.NewCipher(k[:16])
	if err != nil {
		t.Fatal(err)
	}
	cbcMAC := func(msg []byte) []byte {
		msg = append(msg, make([]byte, (16-len(msg)%16)%16)...)
		out := make([]byte, len(msg))
		cipher.NewCBCEncrypter(block, make([]byte, 16)).CryptBlocks(out, msg)
		return out[len(out)-16:][:4]
	}
	ts := []byte{0x67, 0x45, 0x23, 0x01}
	v4 := []byte{10, 0, 0, 1}
	v6 := []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	seen := map[string]string{}
	for name, ip := range map[string][]byte{"v4": v4, "v6": v6, "v4-mapped": {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1}} {
		want := cbcMAC(append(append(append([]byte(nil), ts...), byte(len(ip))), ip...))
		if got := g.tag(ts, ip); !bytes.Equal(got, want) {
			t.Fatalf("%s: tag %x, want %x", name, got, want)
		}
		seen[string(want)] = name
	}
	if len(seen) != 3 {
		t.Fatalf("tags collide: %v", seen)
	}
	base := string(g.tag(ts, v6))
	for i := range v6 {
		ip := append([]byte(nil), v6...)
		ip[i] ^= 1
		if string(g.tag(ts, ip)) == base {
			t.Fatalf("byte %d of the address does not change the tag", i)
		}
	}
	if string(g.tag([]byte{0x67, 0x45, 0x23, 0x02}, v6)) == base || string(newConnIDGen("k2").tag(ts, v6)) == base {
		t.Fatal("the tag ignores the time or the key")
	}
}

func BenchmarkConnIDTag(b *testing.B) {
	g := newConnIDGen("bench")
	ts := []byte{1, 2, 3, 4}
	for _, ip := range [][]byte{{127, 0, 0, 1}, make([]byte, 16)} {
		b.Run(fmt.Sprintf("ip%d", len(ip)), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				g.tag(ts, ip)
			}
		})
	}
}
