package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/chihaya/chihaya/bittorrent"

	"github.com/seedpay/seedpay/middleware/registry"
)

// MaxBodyBytes is the largest request body the API reads; more is 413.
const MaxBodyBytes = 64 << 10

// Limits on names, in characters (runes).
const (
	MaxUserNameLen    = 64
	MaxTorrentNameLen = 512
)

// apiError is an error the client caused, with the status and the message
// that go back in {"error": ...}. Messages never contain secrets.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// quoteInput quotes client-supplied text for an error message, shortened so
// a huge key is not echoed back in full.
func quoteInput(s string) string {
	const limit = 64
	if utf8.RuneCountInString(s) > limit {
		r := []rune(s)
		s = string(r[:limit]) + "…"
	}
	return fmt.Sprintf("%q", s)
}

type createUserRequest struct {
	Name string
}

type createTorrentRequest struct {
	InfoHash bittorrent.InfoHash
	Name     string
	Size     int64
}

// decodeCreateUser reads and validates the body of POST /api/v1/users. It
// does no I/O beyond reading r and is the unit the fuzzer exercises.
func decodeCreateUser(r io.Reader) (createUserRequest, *apiError) {
	obj, aerr := readObject(r, []string{"name"})
	if aerr != nil {
		return createUserRequest{}, aerr
	}
	name, aerr := stringField(obj, "name")
	if aerr != nil {
		return createUserRequest{}, aerr
	}
	if aerr := validateName("name", name, MaxUserNameLen); aerr != nil {
		return createUserRequest{}, aerr
	}
	return createUserRequest{Name: name}, nil
}

// decodeCreateTorrent reads and validates the body of POST /api/v1/torrents.
func decodeCreateTorrent(r io.Reader) (createTorrentRequest, *apiError) {
	obj, aerr := readObject(r, []string{"info_hash", "name", "size"})
	if aerr != nil {
		return createTorrentRequest{}, aerr
	}
	hexIH, aerr := stringField(obj, "info_hash")
	if aerr != nil {
		return createTorrentRequest{}, aerr
	}
	ih, aerr := parseInfoHash(hexIH)
	if aerr != nil {
		return createTorrentRequest{}, aerr
	}
	size, aerr := sizeField(obj, "size")
	if aerr != nil {
		return createTorrentRequest{}, aerr
	}
	name, aerr := stringField(obj, "name")
	if aerr != nil {
		return createTorrentRequest{}, aerr
	}
	if aerr := validateName("name", name, MaxTorrentNameLen); aerr != nil {
		return createTorrentRequest{}, aerr
	}
	return createTorrentRequest{InfoHash: ih, Name: name, Size: size}, nil
}

// readObject reads exactly one JSON object from r. Keys must be exactly those
// in fields (encoding/json's struct decoding would accept "NAME" for "name"),
// must not repeat, and every one is required. Nothing but white space may
// follow the object.
func readObject(r io.Reader, fields []string) (map[string]json.RawMessage, *apiError) {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, badRequest("request body is empty: expected a JSON object")
		}
		return nil, jsonError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, badRequest("request body must be a JSON object")
	}
	obj := make(map[string]json.RawMessage, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonError(err)
		}
		key, ok := tok.(string)
		if !ok { // the decoder already rejects this; belt and braces
			return nil, badRequest("malformed JSON: object key is not a string")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, jsonError(fieldContext(err, key))
		}
		if _, dup := obj[key]; dup {
			return nil, badRequest("duplicate field %s", quoteInput(key))
		}
		if !slices.Contains(fields, key) {
			return nil, badRequest("unknown field %s (allowed: %s)", quoteInput(key), strings.Join(fields, ", "))
		}
		obj[key] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, jsonError(err)
		}
		return nil, badRequest("malformed JSON: unexpected data after the JSON object")
	}
	for _, f := range fields {
		if _, ok := obj[f]; !ok {
			return nil, badRequest("missing required field %q", f)
		}
	}
	return obj, nil
}

// keyedError remembers which field's value failed to decode.
type keyedError struct {
	key string
	err error
}

func (e *keyedError) Error() string { return e.err.Error() }
func (e *keyedError) Unwrap() error { return e.err }

func fieldContext(err error, key string) error { return &keyedError{key: key, err: err} }

// jsonError turns a decoding or read error into the client's error.
func jsonError(err error) *apiError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &apiError{status: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)}
	}
	where := ""
	var ke *keyedError
	if errors.As(err, &ke) {
		where = fmt.Sprintf(" in the value of field %s", quoteInput(ke.key))
	}
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return badRequest("malformed JSON at byte %d%s: %s", se.Offset, where, se.Error())
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("malformed JSON%s: unexpected end of input", where)
	default:
		// A failed read of the body (client went away, bad chunking).
		return badRequest("could not read request body")
	}
}

// stringField returns obj[key] which must be a JSON string.
func stringField(obj map[string]json.RawMessage, key string) (string, *apiError) {
	var p *string
	if err := json.Unmarshal(obj[key], &p); err != nil || p == nil {
		return "", badRequest("invalid field %q: must be a string, got %s", key, jsonKind(obj[key]))
	}
	return *p, nil
}

// sizeField returns obj[key] which must be a JSON integer in 1..MaxInt64.
func sizeField(obj map[string]json.RawMessage, key string) (int64, *apiError) {
	raw := obj[key]
	if k := jsonKind(raw); k != "number" {
		return 0, badRequest("invalid field %q: must be a positive integer, got %s", key, k)
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, badRequest("invalid field %q: must be an integer from 1 to %d, got %s",
			key, int64(math.MaxInt64), quoteInput(string(raw)))
	}
	if n <= 0 {
		return 0, badRequest("invalid field %q: must be a positive integer, got %d", key, n)
	}
	return n, nil
}

// jsonKind names the JSON type of a raw value for error messages.
func jsonKind(raw json.RawMessage) string {
	s := strings.TrimLeft(string(raw), " \t\r\n")
	if s == "" {
		return "nothing"
	}
	switch s[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// validateName checks a display name: 1..maxLen characters, valid UTF-8,
// printable (letters, marks, numbers, punctuation, symbols, ASCII space), so
// no control, format (e.g. bidi overrides) or line-breaking characters, and
// not only spaces.
func validateName(field, s string, maxLen int) *apiError {
	if strings.TrimSpace(s) == "" {
		return badRequest("invalid field %q: must not be empty", field)
	}
	if !utf8.ValidString(s) {
		return badRequest("invalid field %q: must be valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(s); n > maxLen {
		return badRequest("invalid field %q: must be at most %d characters, got %d", field, maxLen, n)
	}
	pos := 0
	for _, r := range s {
		pos++
		if !unicode.IsPrint(r) {
			return badRequest("invalid field %q: character %d (%U) is not printable", field, pos, r)
		}
	}
	return nil
}

// parseInfoHash accepts 40 hex digits in either case.
func parseInfoHash(s string) (bittorrent.InfoHash, *apiError) {
	ih, err := registry.ParseInfoHash(s)
	if err != nil {
		return ih, badRequest("invalid field %q: must be 40 hexadecimal characters, got %s", "info_hash", quoteInput(s))
	}
	return ih, nil
}
