package receipts

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// The JSON form, fields in this order when encoding:
//
//	{"version":1,"info_hash":"<40 hex>","uploader":"<64 hex>","downloader":"<64 hex>",
//	 "session":"<16 hex>","cumulative":"<decimal string>","time":<integer>,"signature":"<128 hex>"}
//
// cumulative is a string because JSON numbers above 2^53 lose precision in
// many languages. Decoding is strict: every field is required, exactly once,
// with its exact (case-sensitive) name; unknown fields, null, wrong types,
// wrong hex lengths and trailing data are errors. Hex is case-insensitive on
// input and lowercase on output.
var jsonFields = [...]string{"version", "info_hash", "uploader", "downloader", "session", "cumulative", "time", "signature"}

// A FieldError reports a bad field (or a bad field name) in a receipt's JSON
// form. It unwraps to ErrMalformed, or to ErrVersion or ErrTime for an
// out-of-range version or time.
type FieldError struct {
	Field  string // the JSON field name, shortened if long
	Reason string
	Err    error
}

func (e *FieldError) Error() string {
	return "field " + strconv.Quote(e.Field) + ": " + e.Reason
}

func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field string, sentinel error, format string, args ...any) *FieldError {
	if len(field) > 64 {
		field = field[:64] + "..."
	}
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...), Err: sentinel}
}

// MarshalJSON returns the JSON form, or an error wrapping ErrVersion or ErrTime
// for a receipt that could not be decoded again.
func (r Receipt) MarshalJSON() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("receipts: %w", err)
	}
	return r.appendJSON(make([]byte, 0, MaxJSONSize)), nil
}

func (r *Receipt) appendJSON(b []byte) []byte {
	b = append(b, `{"version":`...)
	b = strconv.AppendUint(b, uint64(r.Version), 10)
	b = append(b, `,"info_hash":"`...)
	b = hex.AppendEncode(b, r.InfoHash[:])
	b = append(b, `","uploader":"`...)
	b = hex.AppendEncode(b, r.Uploader[:])
	b = append(b, `","downloader":"`...)
	b = hex.AppendEncode(b, r.Downloader[:])
	b = append(b, `","session":"`...)
	b = hex.AppendEncode(b, r.Session[:])
	b = append(b, `","cumulative":"`...)
	b = strconv.AppendUint(b, r.Cumulative, 10)
	b = append(b, `","time":`...)
	b = strconv.AppendInt(b, r.Time, 10)
	b = append(b, `,"signature":"`...)
	b = hex.AppendEncode(b, r.Signature[:])
	return append(b, `"}`...)
}

// UnmarshalJSON decodes the strict JSON form; r is unchanged on error. Errors
// about one field are *FieldError. Unlike the encoding/json convention, null
// is an error, not a no-op. It does not verify the signature.
func (r *Receipt) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	d, err := readJSON(dec)
	if err == nil {
		err = expectEOF(dec)
	}
	if err != nil {
		return fmt.Errorf("receipts: %w", err)
	}
	*r = d
	return nil
}

// expectEOF fails unless dec has nothing left but white space.
func expectEOF(dec *json.Decoder) error {
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON value", ErrMalformed)
	}
	return nil
}

// expectDelim reads the next token and fails unless it is d.
func expectDelim(dec *json.Decoder, d json.Delim, what string) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		return fmt.Errorf("%w: %s: got %s", ErrMalformed, what, describe(tok))
	}
	return nil
}

func describe(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		return strconv.Quote(t.String())
	case string:
		return "a string"
	case nil:
		return "null"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}

// readJSON reads one receipt object from dec.
func readJSON(dec *json.Decoder) (Receipt, error) {
	var r Receipt
	if err := expectDelim(dec, '{', "want a JSON object"); err != nil {
		return r, err
	}
	var seen uint8
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return r, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		key, ok := tok.(string)
		if !ok { // not reachable: the decoder only returns string keys in an object
			return r, fmt.Errorf("%w: object key is %s", ErrMalformed, describe(tok))
		}
		i := fieldIndex(key)
		if i < 0 {
			return r, fieldErr(key, ErrMalformed, "unknown field")
		}
		if seen&(1<<i) != 0 {
			return r, fieldErr(key, ErrMalformed, "duplicate field")
		}
		seen |= 1 << i
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return r, fieldErr(key, ErrMalformed, "%v", err)
		}
		if err := r.setField(i, raw); err != nil {
			return r, err
		}
	}
	if err := expectDelim(dec, '}', "unterminated object"); err != nil {
		return r, err
	}
	for i, name := range jsonFields {
		if seen&(1<<i) == 0 {
			return r, fieldErr(name, ErrMalformed, "missing")
		}
	}
	return r, nil
}

func fieldIndex(key string) int {
	for i, name := range jsonFields {
		if key == name {
			return i
		}
	}
	return -1
}

func (r *Receipt) setField(i int, raw []byte) error {
	name := jsonFields[i]
	switch name {
	case "version":
		v, err := jsonUint(name, raw, 64)
		if err != nil {
			return err
		}
		if v != Version1 {
			return fieldErr(name, ErrVersion, "unsupported version %d (want %d)", v, Version1)
		}
		r.Version = Version1
	case "info_hash":
		return jsonHex(name, raw, r.InfoHash[:])
	case "uploader":
		return jsonHex(name, raw, r.Uploader[:])
	case "downloader":
		return jsonHex(name, raw, r.Downloader[:])
	case "session":
		return jsonHex(name, raw, r.Session[:])
	case "signature":
		return jsonHex(name, raw, r.Signature[:])
	case "cumulative":
		s, err := jsonString(name, raw, "a decimal string")
		if err != nil {
			return err
		}
		v, err := parseDecimal(s)
		if err != nil {
			return fieldErr(name, ErrMalformed, "%v", err)
		}
		r.Cumulative = v
	case "time":
		v, err := jsonUint(name, raw, 63)
		if err != nil {
			return err
		}
		r.Time = int64(v)
	}
	return nil
}

// jsonUint parses a JSON integer literal that fits in bits bits.
func jsonUint(name string, raw []byte, bits int) (uint64, error) {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, fieldErr(name, ErrMalformed, "want a JSON integer, got %s", kind(raw))
	}
	v, err := strconv.ParseUint(string(raw), 10, 64)
	switch {
	case raw[0] == '-':
		if name == "time" {
			return 0, fieldErr(name, ErrTime, "negative")
		}
		return 0, fieldErr(name, ErrMalformed, "negative")
	case errors.Is(err, strconv.ErrRange) || (err == nil && bits < 64 && v >= 1<<bits):
		if name == "time" {
			return 0, fieldErr(name, ErrTime, "above 2^63-1")
		}
		return 0, fieldErr(name, ErrMalformed, "out of range")
	case err != nil:
		return 0, fieldErr(name, ErrMalformed, "want an integer without fraction or exponent, got %s", truncate(raw))
	}
	return v, nil
}

// jsonString decodes a JSON string value.
func jsonString(name string, raw []byte, want string) (string, error) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", fieldErr(name, ErrMalformed, "want %s, got %s", want, kind(raw))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fieldErr(name, ErrMalformed, "%v", err)
	}
	return s, nil
}

// jsonHex decodes a hex string of exactly 2*len(dst) digits into dst.
func jsonHex(name string, raw []byte, dst []byte) error {
	s, err := jsonString(name, raw, "a hex string")
	if err != nil {
		return err
	}
	if len(s) != 2*len(dst) {
		return fieldErr(name, ErrMalformed, "want %d hex digits, got %d", 2*len(dst), len(s))
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return fieldErr(name, ErrMalformed, "not hex: %v", err)
	}
	return nil
}

// parseDecimal parses a canonical unsigned decimal: digits only, no sign, no
// leading zero (except "0" itself), at most 2^64-1.
func parseDecimal(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("want decimal digits only, got %s", truncate([]byte(s)))
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("leading zero in %s", truncate([]byte(s)))
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, errors.New("above 2^64-1")
	}
	return v, nil
}

// kind names the JSON type of a raw value for error messages.
func kind(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func truncate(b []byte) string {
	if len(b) > 32 {
		return strconv.Quote(string(b[:32])) + "..."
	}
	return strconv.Quote(string(b))
}
