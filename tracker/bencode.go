package tracker

import (
	"sort"
	"strconv"

	"github.com/chihaya/chihaya/bittorrent"
)

// The HTTP responses are encoded by hand into a reused buffer: the key
// order below is the byte order BEP 3 requires (upstream chihaya encodes a Go
// map and so emits keys in random order, chihaya issue 520).

func appendString(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

func appendBytes(b []byte, s []byte) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

func appendInt(b []byte, n int64) []byte {
	b = append(b, 'i')
	b = strconv.AppendInt(b, n, 10)
	return append(b, 'e')
}

func appendKeyInt(b []byte, key string, n int64) []byte {
	return appendInt(appendString(b, key), n)
}

// appendFailure encodes d14:failure reason<len>:<msg>e.
func appendFailure(b []byte, msg string) []byte {
	b = append(b, "d14:failure reason"...)
	b = appendString(b, msg)
	return append(b, 'e')
}

// appendAnnounce encodes an announce response. Compact responses carry IPv4
// peers in "peers" (BEP 23) and IPv6 peers in "peers6" (BEP 7); non-compact
// responses list every peer as a dictionary in "peers".
func appendAnnounce(b []byte, resp *bittorrent.AnnounceResponse) []byte {
	b = append(b, 'd')
	b = appendKeyInt(b, "complete", int64(resp.Complete))
	b = appendKeyInt(b, "incomplete", int64(resp.Incomplete))
	b = appendKeyInt(b, "interval", int64(resp.Interval.Seconds()))
	b = appendKeyInt(b, "min interval", int64(resp.MinInterval.Seconds()))
	if resp.Compact {
		b = append(b, "5:peers"...)
		b = strconv.AppendInt(b, int64(6*len(resp.IPv4Peers)), 10)
		b = append(b, ':')
		for _, p := range resp.IPv4Peers {
			b = append(b, p.IP.IP.To4()...)
			b = append(b, byte(p.Port>>8), byte(p.Port))
		}
		if len(resp.IPv6Peers) > 0 {
			b = append(b, "6:peers6"...)
			b = strconv.AppendInt(b, int64(18*len(resp.IPv6Peers)), 10)
			b = append(b, ':')
			for _, p := range resp.IPv6Peers {
				b = append(b, p.IP.IP.To16()...)
				b = append(b, byte(p.Port>>8), byte(p.Port))
			}
		}
		return append(b, 'e')
	}
	b = append(b, "5:peersl"...)
	for _, list := range [2][]bittorrent.Peer{resp.IPv4Peers, resp.IPv6Peers} {
		for _, p := range list {
			b = append(b, "d2:ip"...)
			b = appendString(b, p.IP.IP.String())
			b = append(b, "7:peer id"...)
			b = appendBytes(b, p.ID[:])
			b = appendKeyInt(b, "port", int64(p.Port))
			b = append(b, 'e')
		}
	}
	return append(b, "ee"...)
}

// appendScrape encodes a scrape response; "files" is keyed by raw info_hash,
// sorted bytewise as BEP 3 requires.
func appendScrape(b []byte, resp *bittorrent.ScrapeResponse) []byte {
	files := resp.Files
	if !sort.SliceIsSorted(files, func(i, j int) bool { return string(files[i].InfoHash[:]) < string(files[j].InfoHash[:]) }) {
		files = append([]bittorrent.Scrape(nil), files...)
		sort.Slice(files, func(i, j int) bool { return string(files[i].InfoHash[:]) < string(files[j].InfoHash[:]) })
	}
	b = append(b, "d5:filesd"...)
	var prev *bittorrent.InfoHash
	for i := range files {
		f := &files[i]
		if prev != nil && *prev == f.InfoHash {
			continue // a dictionary has each key once
		}
		prev = &f.InfoHash
		b = appendBytes(b, f.InfoHash[:])
		b = append(b, 'd')
		b = appendKeyInt(b, "complete", int64(f.Complete))
		b = appendKeyInt(b, "downloaded", int64(f.Snatches))
		b = appendKeyInt(b, "incomplete", int64(f.Incomplete))
		b = append(b, 'e')
	}
	return append(b, "ee"...)
}
