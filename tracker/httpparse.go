package tracker

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unsafe"

	"github.com/chihaya/chihaya/bittorrent"
)

// The HTTP parse errors, boxed once (converting a ClientError to error
// allocates). Their texts are chihaya's, so clients see the same reasons.
var (
	errHTTPEscape     error = bittorrent.ErrInvalidQueryEscape
	errHTTPInfohash   error = bittorrent.ErrInvalidInfohash
	errHTTPEvent      error = bittorrent.ClientError("failed to provide valid client event")
	errHTTPNoHash     error = bittorrent.ClientError("no info_hash parameter supplied")
	errHTTPManyHashes error = bittorrent.ClientError("multiple info_hash parameters supplied")
	errHTTPPeerIDKey  error = bittorrent.ClientError("failed to parse parameter: peer_id")
	errHTTPPeerID     error = bittorrent.ClientError("failed to provide valid peer_id")
	errHTTPLeft       error = bittorrent.ClientError("failed to parse parameter: left")
	errHTTPDownloaded error = bittorrent.ClientError("failed to parse parameter: downloaded")
	errHTTPUploaded   error = bittorrent.ClientError("failed to parse parameter: uploaded")
	errHTTPNumWant    error = bittorrent.ClientError("failed to parse parameter: numwant")
	errHTTPPort       error = bittorrent.ClientError("failed to parse parameter: port")
	errHTTPIP         error = bittorrent.ClientError("failed to parse peer IP address")
)

// The query keys an announce reads, in httpQuery.vals.
const (
	keyEvent = iota
	keyCompact
	keyPeerID
	keyLeft
	keyDownloaded
	keyUploaded
	keyNumWant
	keyPort
	numKeys
)

var queryKeys = [numKeys]string{"event", "compact", "peer_id", "left", "downloaded", "uploaded", "numwant", "port"}

// httpQuery is a request target's URL data, parsed like chihaya's
// bittorrent.ParseURLData (the same keys, values, info hashes and errors)
// without allocating: the values an announce reads are unescaped into buf,
// the info hashes into hashes (at most cap(hashes) kept, all checked).
// It is the request's bittorrent.Params; its strings point into the
// request's buffers, valid until the next request on the connection, which
// comes after the last hook.
type httpQuery struct {
	path, query string
	buf         []byte
	vals        [numKeys]struct{ start, end int32 } // into buf; start -1: absent
	hashes      []bittorrent.InfoHash
	nHashes     int // how many the query had (may exceed len(hashes))
}

var _ bittorrent.Params = (*httpQuery)(nil)

// parse reads target ("<path>?<query>"), keeping at most maxHashes info
// hashes.
func (q *httpQuery) parse(target string, maxHashes int) error {
	q.path, q.query = target, ""
	if i := strings.IndexByte(target, '?'); i >= 0 {
		q.path, q.query = target[:i], target[i+1:]
	}
	q.buf = q.buf[:0]
	q.hashes = q.hashes[:0]
	q.nHashes = 0
	for i := range q.vals {
		q.vals[i].start = -1
	}
	for rest := q.query; rest != ""; {
		var key, value string
		var ok bool
		if key, value, rest, ok = nextPair(rest); !ok {
			continue
		}
		// Unescape the key onto buf's end, then drop it again: only its
		// name matters.
		mark := len(q.buf)
		if q.buf, ok = appendUnescaped(q.buf, key); !ok {
			return errHTTPEscape
		}
		k := -1
		isHash := false
		if kb := q.buf[mark:]; string(kb) == "info_hash" {
			isHash = true
		} else {
			k = knownKey(kb)
		}
		q.buf = q.buf[:mark]
		if q.buf, ok = appendUnescaped(q.buf, value); !ok {
			return errHTTPEscape
		}
		switch {
		case isHash:
			if len(q.buf)-mark != 20 {
				return errHTTPInfohash
			}
			if len(q.hashes) < maxHashes {
				q.hashes = append(q.hashes, bittorrent.InfoHash(q.buf[mark:]))
			}
			q.nHashes++
			q.buf = q.buf[:mark]
		case k >= 0:
			q.vals[k].start, q.vals[k].end = int32(mark), int32(len(q.buf)) // the last one wins
		default:
			q.buf = q.buf[:mark]
		}
	}
	return nil
}

// knownKey is the index of key (lower-cased) in queryKeys, or -1. Only
// ASCII is folded: no other rune lower-cases to one of the keys' letters
// (the Kelvin sign folds to 'k', which none of them has).
func knownKey(key []byte) int {
	if len(key) < 4 || len(key) > 10 {
		return -1
	}
	var low [10]byte
	for i, c := range key {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	l := low[:len(key)]
	for i, name := range queryKeys {
		if string(l) == name {
			return i
		}
	}
	return -1
}

// val is the last value of the known key k.
func (q *httpQuery) val(k int) (string, bool) {
	v := q.vals[k]
	if v.start < 0 {
		return "", false
	}
	if v.start == v.end {
		return "", true
	}
	return unsafe.String(&q.buf[v.start], int(v.end-v.start)), true
}

// uint parses the known key k like QueryParams.Uint: ok false when absent.
func (q *httpQuery) uint(k, bits int) (n uint64, ok bool, err error) {
	s, ok := q.val(k)
	if !ok {
		return 0, false, nil
	}
	n, err = strconv.ParseUint(s, 10, bits)
	return n, true, err
}

// String implements bittorrent.Params: the last value of key, found again
// in the query (hooks rarely ask, so this path may allocate).
func (q *httpQuery) String(key string) (string, bool) {
	var val string
	found := false
	for rest := q.query; rest != ""; {
		k, v, r, ok := nextPair(rest)
		if rest = r; !ok {
			continue
		}
		k, err := url.QueryUnescape(k)
		if err != nil || k == "info_hash" || strings.ToLower(k) != key {
			continue
		}
		if v, err = url.QueryUnescape(v); err == nil {
			val, found = v, true
		}
	}
	return val, found
}

// nextPair splits the first key=value pair off query (pairs end at '&' or
// ';', as chihaya's parser has them); ok false for an empty pair.
func nextPair(query string) (key, value, rest string, ok bool) {
	pair := query
	if i := strings.IndexAny(query, "&;"); i >= 0 {
		pair, rest = query[:i], query[i+1:]
	}
	if pair == "" {
		return "", "", rest, false
	}
	key = pair
	if i := strings.IndexByte(pair, '='); i >= 0 {
		key, value = pair[:i], pair[i+1:]
	}
	return key, value, rest, true
}

// RawPath implements bittorrent.Params.
func (q *httpQuery) RawPath() string { return q.path }

// RawQuery implements bittorrent.Params.
func (q *httpQuery) RawQuery() string { return q.query }

// appendUnescaped appends s decoded like url.QueryUnescape ('+' is a
// space) to b; ok false on a bad escape.
func appendUnescaped(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%':
			if i+2 >= len(s) {
				return b, false
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return b, false
			}
			b = append(b, hi<<4|lo)
			i += 2
		case '+':
			b = append(b, ' ')
		default:
			b = append(b, c)
		}
	}
	return b, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// parseHTTPAnnounce fills req from an announce's request target, like
// chihaya's http.ParseAnnounce with IP spoofing off: the peer's address is
// realIP (the real-IP header's value, when configured and sent) or remote.
// It does not allocate: req.Params is q, req.Peer.IP points into ip.
func parseHTTPAnnounce(target string, remote netip.Addr, realIP string, opts *httpParseOptions, req *bittorrent.AnnounceRequest, q *httpQuery, ip *[16]byte) error {
	if err := q.parse(target, 2); err != nil {
		return err
	}
	*req = bittorrent.AnnounceRequest{Params: q}
	if ev, ok := q.val(keyEvent); ok {
		req.EventProvided = true
		e, ok := parseEvent(ev)
		if !ok {
			return errHTTPEvent
		}
		req.Event = e
	}
	compact, _ := q.val(keyCompact)
	req.Compact = compact != "" && compact != "0"
	switch {
	case q.nHashes < 1:
		return errHTTPNoHash
	case q.nHashes > 1:
		return errHTTPManyHashes
	}
	req.InfoHash = q.hashes[0]
	pid, ok := q.val(keyPeerID)
	if !ok {
		return errHTTPPeerIDKey
	}
	if len(pid) != 20 {
		return errHTTPPeerID
	}
	copy(req.Peer.ID[:], pid)
	var err error
	if req.Left, ok, err = q.uint(keyLeft, 64); !ok || err != nil {
		return errHTTPLeft
	}
	if req.Downloaded, ok, err = q.uint(keyDownloaded, 64); !ok || err != nil {
		return errHTTPDownloaded
	}
	if req.Uploaded, ok, err = q.uint(keyUploaded, 64); !ok || err != nil {
		return errHTTPUploaded
	}
	numWant, ok, err := q.uint(keyNumWant, 32)
	if err != nil {
		return errHTTPNumWant
	}
	req.NumWantProvided, req.NumWant = ok, uint32(numWant)
	port, ok, err := q.uint(keyPort, 16)
	if !ok || err != nil {
		return errHTTPPort
	}
	req.Peer.Port = uint16(port)

	addr := remote
	if realIP != "" {
		if addr, err = netip.ParseAddr(realIP); err != nil || addr.Zone() != "" {
			return errHTTPIP
		}
	}
	if !addr.IsValid() {
		return errHTTPIP
	}
	// bittorrent.SanitizeAnnounce, without its debug log (which allocates).
	if req.Peer.Port == 0 {
		return errInvalidPort
	}
	if !req.NumWantProvided {
		req.NumWant = opts.DefaultNumWant
	} else if req.NumWant > opts.MaxNumWant {
		req.NumWant = opts.MaxNumWant
	}
	*ip = addr.As16()
	if addr.Is4() || addr.Is4In6() {
		req.Peer.IP = bittorrent.IP{IP: ip[12:16], AddressFamily: bittorrent.IPv4}
	} else {
		req.Peer.IP = bittorrent.IP{IP: ip[:], AddressFamily: bittorrent.IPv6}
	}
	return nil
}

// parseEvent is bittorrent.NewEvent without its map: "" and the four names,
// ASCII case folded (no other rune folds into them).
func parseEvent(s string) (bittorrent.Event, bool) {
	if len(s) > 9 {
		return bittorrent.None, false
	}
	var low [9]byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	switch string(low[:len(s)]) {
	case "", "none":
		return bittorrent.None, true
	case "started":
		return bittorrent.Started, true
	case "stopped":
		return bittorrent.Stopped, true
	case "completed":
		return bittorrent.Completed, true
	}
	return bittorrent.None, false
}

// parseHTTPScrape fills req from a scrape's request target, like chihaya's
// http.ParseScrape: at most maxHashes info hashes are kept.
func parseHTTPScrape(target string, maxHashes int, req *bittorrent.ScrapeRequest, q *httpQuery) error {
	if err := q.parse(target, maxHashes); err != nil {
		return err
	}
	if q.nHashes < 1 {
		return errHTTPNoHash
	}
	req.InfoHashes, req.Params = q.hashes, q
	return nil
}

// httpParseOptions are the announce parser's limits.
type httpParseOptions struct {
	MaxNumWant, DefaultNumWant uint32
	MaxScrapeInfoHashes        uint32
}
