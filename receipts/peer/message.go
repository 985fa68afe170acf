package peer

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/seedpay/seedpay/receipts"
)

// ExtensionName is the name of the extension in the BEP 10 handshake's "m"
// dictionary.
const ExtensionName = "seedpay_receipt"

// Message types (the "msg_type" key).
const (
	MsgHello   = 0 // the sender's ed25519 public key
	MsgReceipt = 1 // a receipt for the receiver, signed by the sender
)

// MaxMessageSize bounds the payload of one extension message; larger ones
// are refused unread.
const MaxMessageSize = 1024

// ProtocolVersion is the "v" a hello carries.
const ProtocolVersion = 1

var (
	// ErrMalformed: the payload is not a bencoded dictionary of the expected
	// shape.
	ErrMalformed = errors.New("peer: malformed extension message")
	// ErrUnknownType: a well-formed message of a type this version does not
	// know; a receiver ignores it (a later version may add types).
	ErrUnknownType = errors.New("peer: unknown extension message type")
)

// Message is one decoded extension message.
type Message struct {
	Type    int64
	Key     [32]byte         // MsgHello
	Version int64            // MsgHello: the sender's protocol version
	Receipt receipts.Receipt // MsgReceipt
}

// EncodeHello returns a hello carrying pub.
func EncodeHello(pub [32]byte) []byte {
	return encodeDict(map[string]any{"msg_type": int64(MsgHello), "key": pub[:], "v": int64(ProtocolVersion)})
}

// EncodeReceipt returns a receipt message.
func EncodeReceipt(r receipts.Receipt) []byte {
	return encodeDict(map[string]any{"msg_type": int64(MsgReceipt), "receipt": r.Encode()})
}

// DecodeMessage parses an extension payload. Unknown dictionary keys are
// ignored; a known key with the wrong type or size is an error. Decoding
// checks a receipt's structure, not its signature.
func DecodeMessage(b []byte) (Message, error) {
	if len(b) > MaxMessageSize {
		return Message{}, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(b), MaxMessageSize)
	}
	d, err := decodeDict(b)
	if err != nil {
		return Message{}, err
	}
	t, ok := d["msg_type"].(int64)
	if !ok {
		return Message{}, fmt.Errorf("%w: no integer msg_type", ErrMalformed)
	}
	m := Message{Type: t}
	switch t {
	case MsgHello:
		k, ok := d["key"].(string)
		if !ok || len(k) != 32 {
			return Message{}, fmt.Errorf("%w: hello: key must be a 32-byte string", ErrMalformed)
		}
		copy(m.Key[:], k)
		if v, present := d["v"]; present {
			if m.Version, ok = v.(int64); !ok {
				return Message{}, fmt.Errorf("%w: hello: v must be an integer", ErrMalformed)
			}
		}
	case MsgReceipt:
		s, ok := d["receipt"].(string)
		if !ok {
			return Message{}, fmt.Errorf("%w: receipt: no receipt string", ErrMalformed)
		}
		if m.Receipt, err = receipts.Decode([]byte(s)); err != nil {
			return Message{}, fmt.Errorf("%w: receipt: %v", ErrMalformed, err)
		}
	default:
		return m, fmt.Errorf("%w: %d", ErrUnknownType, t)
	}
	return m, nil
}

// encodeDict bencodes a flat dictionary of int64 and []byte values, keys
// sorted (BEP 3).
func encodeDict(d map[string]any) []byte {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteByte('d')
	for _, k := range keys {
		b.WriteString(strconv.Itoa(len(k)) + ":" + k)
		switch v := d[k].(type) {
		case int64:
			b.WriteString("i" + strconv.FormatInt(v, 10) + "e")
		case []byte:
			b.WriteString(strconv.Itoa(len(v)) + ":")
			b.Write(v)
		default:
			panic(fmt.Sprintf("peer: encodeDict: unsupported %T", v))
		}
	}
	b.WriteByte('e')
	return b.Bytes()
}

// decodeDict decodes one bencoded dictionary (and nothing after it) into
// its integer and string values; lists and nested dictionaries are checked
// and skipped.
func decodeDict(b []byte) (map[string]any, error) {
	p := &parser{b: b}
	if !p.eat('d') {
		return nil, fmt.Errorf("%w: not a dictionary", ErrMalformed)
	}
	d := map[string]any{}
	for !p.eat('e') {
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		v, err := p.value(1)
		if err != nil {
			return nil, err
		}
		if _, dup := d[k]; dup {
			return nil, fmt.Errorf("%w: duplicate key %q", ErrMalformed, k)
		}
		d[k] = v
	}
	if p.i != len(b) {
		return nil, fmt.Errorf("%w: %d bytes after the dictionary", ErrMalformed, len(b)-p.i)
	}
	return d, nil
}

type parser struct {
	b []byte
	i int
}

func (p *parser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) str() (string, error) {
	j := p.i
	for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' && j-p.i < 7 {
		j++
	}
	if j == p.i || j >= len(p.b) || p.b[j] != ':' || (p.b[p.i] == '0' && j-p.i > 1) {
		return "", fmt.Errorf("%w: bad string at %d", ErrMalformed, p.i)
	}
	n, _ := strconv.Atoi(string(p.b[p.i:j]))
	if n > len(p.b)-j-1 {
		return "", fmt.Errorf("%w: string at %d overruns the message", ErrMalformed, p.i)
	}
	s := string(p.b[j+1 : j+1+n])
	p.i = j + 1 + n
	return s, nil
}

func (p *parser) value(depth int) (any, error) {
	if depth > 8 {
		return nil, fmt.Errorf("%w: nested too deep", ErrMalformed)
	}
	if p.i >= len(p.b) {
		return nil, fmt.Errorf("%w: unexpected end", ErrMalformed)
	}
	switch c := p.b[p.i]; {
	case c == 'i':
		end := bytes.IndexByte(p.b[p.i:], 'e')
		if end < 0 {
			return nil, fmt.Errorf("%w: unterminated integer", ErrMalformed)
		}
		s := string(p.b[p.i+1 : p.i+end])
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != s {
			return nil, fmt.Errorf("%w: bad integer %q", ErrMalformed, s)
		}
		p.i += end + 1
		return n, nil
	case c >= '0' && c <= '9':
		return p.str()
	case c == 'l':
		p.i++
		for !p.eat('e') {
			if _, err := p.value(depth + 1); err != nil {
				return nil, err
			}
		}
		return nil, nil
	case c == 'd':
		p.i++
		for !p.eat('e') {
			if _, err := p.str(); err != nil {
				return nil, err
			}
			if _, err := p.value(depth + 1); err != nil {
				return nil, err
			}
		}
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: unexpected byte %q at %d", ErrMalformed, c, p.i)
	}
}
