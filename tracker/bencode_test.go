package tracker

import (
	"net"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
)

func peer(id string, ip string, port uint16) bittorrent.Peer {
	p := bittorrent.Peer{ID: bittorrent.PeerIDFromString(id), Port: port}
	p.IP.IP = net.ParseIP(ip)
	if v4 := p.IP.IP.To4(); v4 != nil {
		p.IP.IP, p.IP.AddressFamily = v4, bittorrent.IPv4
	} else {
		p.IP.AddressFamily = bittorrent.IPv6
	}
	return p
}

func TestBencodeByteForByte(t *testing.T) {
	ihA := bittorrent.InfoHashFromString("AAAAAAAAAAAAAAAAAAAA")
	ihB := bittorrent.InfoHashFromString("BBBBBBBBBBBBBBBBBBBB")
	v4 := peer("-qB4500-aaaaaaaaaaaa", "10.0.0.1", 6881)
	v6 := peer("-TR3000-bbbbbbbbbbbb", "2001:db8::1", 51413)
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{
			name: "failure",
			got:  appendFailure(nil, "unknown passkey"),
			want: "d14:failure reason15:unknown passkeye",
		},
		{
			name: "compact v4 only",
			got: appendAnnounce(nil, &bittorrent.AnnounceResponse{
				Compact: true, Complete: 3, Incomplete: 2, Interval: 30 * time.Minute, MinInterval: 15 * time.Minute,
				IPv4Peers: []bittorrent.Peer{v4},
			}),
			want: "d8:completei3e10:incompletei2e8:intervali1800e12:min intervali900e5:peers6:\x0a\x00\x00\x01\x1a\xe1e",
		},
		{
			name: "compact empty swarm still has peers key",
			got:  appendAnnounce(nil, &bittorrent.AnnounceResponse{Compact: true, Interval: time.Minute, MinInterval: time.Second}),
			want: "d8:completei0e10:incompletei0e8:intervali60e12:min intervali1e5:peers0:e",
		},
		{
			name: "compact v6 in peers6 after peers",
			got: appendAnnounce(nil, &bittorrent.AnnounceResponse{
				Compact: true, Interval: time.Minute, MinInterval: time.Minute,
				IPv6Peers: []bittorrent.Peer{v6},
			}),
			want: "d8:completei0e10:incompletei0e8:intervali60e12:min intervali60e5:peers0:6:peers618:" +
				"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\xc8\xd5e",
		},
		{
			name: "non-compact dictionaries with sorted keys",
			got: appendAnnounce(nil, &bittorrent.AnnounceResponse{
				Interval: time.Minute, MinInterval: time.Minute,
				IPv4Peers: []bittorrent.Peer{v4}, IPv6Peers: []bittorrent.Peer{v6},
			}),
			want: "d8:completei0e10:incompletei0e8:intervali60e12:min intervali60e5:peersl" +
				"d2:ip8:10.0.0.17:peer id20:-qB4500-aaaaaaaaaaaa4:porti6881ee" +
				"d2:ip11:2001:db8::17:peer id20:-TR3000-bbbbbbbbbbbb4:porti51413ee" +
				"ee",
		},
		{
			name: "scrape files sorted by raw hash, duplicates once",
			got: appendScrape(nil, &bittorrent.ScrapeResponse{Files: []bittorrent.Scrape{
				{InfoHash: ihB, Complete: 1, Incomplete: 2, Snatches: 3},
				{InfoHash: ihA, Complete: 4, Incomplete: 5, Snatches: 6},
				{InfoHash: ihB, Complete: 1, Incomplete: 2, Snatches: 3},
			}}),
			want: "d5:filesd" +
				"20:AAAAAAAAAAAAAAAAAAAAd8:completei4e10:downloadedi6e10:incompletei5ee" +
				"20:BBBBBBBBBBBBBBBBBBBBd8:completei1e10:downloadedi3e10:incompletei2ee" +
				"ee",
		},
		{
			name: "scrape of nothing",
			got:  appendScrape(nil, &bittorrent.ScrapeResponse{}),
			want: "d5:filesdee",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Errorf("got  %q\nwant %q", tt.got, tt.want)
			}
		})
	}
}
