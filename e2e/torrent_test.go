package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"
)

const (
	payloadSize = 8 << 20   // 8 MiB
	pieceLength = 256 << 10 // 32 pieces
)

// payload is a random file a seeder shares.
type payload struct {
	name   string // file name (also the torrent's name)
	path   string // full path in the seeder's directory
	size   int64
	sha256 string // hex
}

// makePayload writes size random bytes to dir/name.
func makePayload(t *testing.T, dir, name string, size int64) payload {
	t.Helper()
	b := make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return payload{name: name, path: p, size: size, sha256: hex.EncodeToString(sum[:])}
}

// makeTorrent writes a single-file private .torrent for pl with the given
// announce URL to out and returns the info hash (40 lowercase hex). The info
// dictionary does not depend on the announce URL, so torrents made for
// different passkeys share the info hash.
func makeTorrent(t *testing.T, pl payload, announce, out string) string {
	t.Helper()
	f, err := os.Open(pl.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pieces bytes.Buffer
	buf := make([]byte, pieceLength)
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			sum := sha1.Sum(buf[:n])
			pieces.Write(sum[:])
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	info := map[string]any{
		"length":       pl.size,
		"name":         pl.name,
		"piece length": int64(pieceLength),
		"pieces":       pieces.String(),
		"private":      int64(1),
	}
	infoB := bencode(info)
	meta := map[string]any{
		"announce":      announce,
		"announce-list": []any{[]any{announce}},
		"created by":    "seedpay-e2e",
		"creation date": time.Now().Unix(),
		"info":          rawBencode(infoB),
	}
	if err := os.WriteFile(out, bencode(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(infoB)
	return hex.EncodeToString(sum[:])
}

// fileSHA256 returns the hex SHA-256 of a file, or "" when it cannot be read.
func fileSHA256(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// waitFileSHA256 waits until path exists with the wanted SHA-256 and
// reports whether it did within timeout. alive, when not nil, stops the
// wait early when it returns an error (e.g. the client process died).
func waitFileSHA256(path, want string, timeout time.Duration, alive func() error) (bool, error) {
	var err error
	ok := waitFor(timeout, 250*time.Millisecond, func() bool {
		if fileSHA256(path) == want {
			return true
		}
		if alive != nil {
			err = alive()
		}
		return err != nil
	})
	if err != nil {
		return false, err
	}
	return ok, nil
}

// rawBencode is already-encoded bencode inserted verbatim.
type rawBencode []byte

// bencode encodes string, []byte, int, int64, []any, map[string]any and
// rawBencode values; dictionary keys are sorted.
func bencode(v any) []byte {
	var b bytes.Buffer
	bencodeTo(&b, v)
	return b.Bytes()
}

func bencodeTo(b *bytes.Buffer, v any) {
	switch v := v.(type) {
	case string:
		b.WriteString(strconv.Itoa(len(v)) + ":" + v)
	case []byte:
		b.WriteString(strconv.Itoa(len(v)) + ":")
		b.Write(v)
	case int:
		b.WriteString("i" + strconv.Itoa(v) + "e")
	case int64:
		b.WriteString("i" + strconv.FormatInt(v, 10) + "e")
	case rawBencode:
		b.Write(v)
	case []any:
		b.WriteByte('l')
		for _, e := range v {
			bencodeTo(b, e)
		}
		b.WriteByte('e')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('d')
		for _, k := range keys {
			bencodeTo(b, k)
			bencodeTo(b, v[k])
		}
		b.WriteByte('e')
	default:
		panic(fmt.Sprintf("bencode: unsupported type %T", v))
	}
}

// bdecoder is a strict bencode decoder: it rejects malformed input and
// trailing data, and records canonical-form violations (unsorted or
// duplicate dictionary keys, non-canonical integers) in issues.
type bdecoder struct {
	data   []byte
	pos    int
	issues []string
}

// bdecode decodes a complete bencoded value into string, int64, []any or
// map[string]any.
func bdecode(data []byte) (v any, issues []string, err error) {
	d := &bdecoder{data: data}
	v, err = d.value(0)
	if err != nil {
		return nil, d.issues, err
	}
	if d.pos != len(data) {
		return nil, d.issues, fmt.Errorf("bencode: %d bytes of trailing data", len(data)-d.pos)
	}
	return v, d.issues, nil
}

func (d *bdecoder) value(depth int) (any, error) {
	if depth > 32 {
		return nil, fmt.Errorf("bencode: nested too deep")
	}
	if d.pos >= len(d.data) {
		return nil, fmt.Errorf("bencode: unexpected end at %d", d.pos)
	}
	switch c := d.data[d.pos]; {
	case c == 'i':
		end := bytes.IndexByte(d.data[d.pos:], 'e')
		if end < 0 {
			return nil, fmt.Errorf("bencode: unterminated integer at %d", d.pos)
		}
		s := string(d.data[d.pos+1 : d.pos+end])
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bencode: bad integer %q at %d", s, d.pos)
		}
		if strconv.FormatInt(n, 10) != s {
			d.issues = append(d.issues, fmt.Sprintf("non-canonical integer %q", s))
		}
		d.pos += end + 1
		return n, nil
	case c >= '0' && c <= '9':
		return d.str()
	case c == 'l':
		d.pos++
		var l []any
		for {
			if d.pos >= len(d.data) {
				return nil, fmt.Errorf("bencode: unterminated list")
			}
			if d.data[d.pos] == 'e' {
				d.pos++
				return l, nil
			}
			e, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			l = append(l, e)
		}
	case c == 'd':
		d.pos++
		m := map[string]any{}
		prev, first := "", true
		for {
			if d.pos >= len(d.data) {
				return nil, fmt.Errorf("bencode: unterminated dictionary")
			}
			if d.data[d.pos] == 'e' {
				d.pos++
				return m, nil
			}
			k, err := d.str()
			if err != nil {
				return nil, fmt.Errorf("bencode: dictionary key: %v", err)
			}
			if !first && k <= prev {
				d.issues = append(d.issues, fmt.Sprintf("dictionary key %q after %q: keys not sorted/unique", k, prev))
			}
			prev, first = k, false
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
	default:
		return nil, fmt.Errorf("bencode: unexpected byte %q at %d", c, d.pos)
	}
}

func (d *bdecoder) str() (string, error) {
	colon := bytes.IndexByte(d.data[d.pos:], ':')
	if colon < 0 {
		return "", fmt.Errorf("bencode: string without ':' at %d", d.pos)
	}
	n, err := strconv.Atoi(string(d.data[d.pos : d.pos+colon]))
	if err != nil || n < 0 {
		return "", fmt.Errorf("bencode: bad string length at %d", d.pos)
	}
	start := d.pos + colon + 1
	if start+n > len(d.data) {
		return "", fmt.Errorf("bencode: string of %d bytes overruns input at %d", n, d.pos)
	}
	d.pos = start + n
	return string(d.data[start : start+n]), nil
}
