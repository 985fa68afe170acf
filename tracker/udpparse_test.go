package tracker

import (
	"bytes"
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
