package receipts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// EncodeBatch returns the binary batch form: the receipts' binary forms
// concatenated, with no header.
func EncodeBatch(rs []Receipt) []byte {
	b := make([]byte, 0, len(rs)*Size)
	for i := range rs {
		b = rs[i].appendBinary(b)
	}
	return b
}

// DecodeBatch decodes a binary batch of at most max receipts. The length of b
// must be a multiple of Size (zero gives an empty batch). One malformed
// receipt fails the whole batch; the error names its index (from 0). The
// count is checked before anything is allocated. Signatures are not verified.
func DecodeBatch(b []byte, max int) ([]Receipt, error) {
	if len(b)%Size != 0 {
		return nil, fmt.Errorf("receipts: batch: %w: %d bytes is not a multiple of %d", ErrSize, len(b), Size)
	}
	n := len(b) / Size
	if n > max {
		return nil, fmt.Errorf("receipts: batch: %w: %d, at most %d", ErrTooMany, n, max)
	}
	rs := make([]Receipt, n)
	for i := range rs {
		r, err := decode(b[i*Size : (i+1)*Size])
		if err != nil {
			return nil, fmt.Errorf("receipts: batch: receipt %d: %w", i, err)
		}
		rs[i] = r
	}
	return rs, nil
}

// EncodeJSONBatch returns the JSON batch form {"receipts":[...]}. It fails like
// MarshalJSON, naming the receipt's index.
func EncodeJSONBatch(rs []Receipt) ([]byte, error) {
	b := make([]byte, 0, 16+len(rs)*(MaxJSONSize+1))
	b = append(b, `{"receipts":[`...)
	for i := range rs {
		if err := rs[i].check(); err != nil {
			return nil, fmt.Errorf("receipts: batch: receipt %d: %w", i, err)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = rs[i].appendJSON(b)
	}
	return append(b, "]}"...), nil
}

// DecodeJSONBatch decodes the JSON batch form {"receipts":[...]} holding at
// most max receipts, each as strict as UnmarshalJSON; the object must have
// exactly the one field "receipts". The count is checked as the array is read,
// so a long array fails at receipt max+1. Signatures are not verified. The
// caller bounds len(b): EncodeJSONBatch writes at most
// 16 + n*(MaxJSONSize+1) bytes for n receipts.
func DecodeJSONBatch(b []byte, max int) ([]Receipt, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	rs, err := readJSONBatch(dec, max)
	if err == nil {
		err = expectEOF(dec)
	}
	if err != nil {
		return nil, fmt.Errorf("receipts: batch: %w", err)
	}
	return rs, nil
}

func readJSONBatch(dec *json.Decoder, max int) ([]Receipt, error) {
	if err := expectDelim(dec, '{', "want a JSON object"); err != nil {
		return nil, err
	}
	var rs []Receipt
	found := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		key, _ := tok.(string)
		if key != "receipts" {
			return nil, fieldErr(key, ErrMalformed, "unknown field")
		}
		if found {
			return nil, fieldErr(key, ErrMalformed, "duplicate field")
		}
		found = true
		if err := expectDelim(dec, '[', `"receipts" wants an array`); err != nil {
			return nil, err
		}
		rs = []Receipt{}
		for dec.More() {
			if len(rs) >= max {
				return nil, fmt.Errorf("%w: more than %d", ErrTooMany, max)
			}
			r, err := readJSON(dec)
			if err != nil {
				return nil, fmt.Errorf("receipt %d: %w", len(rs), err)
			}
			rs = append(rs, r)
		}
		if err := expectDelim(dec, ']', "unterminated array"); err != nil {
			return nil, err
		}
		if len(rs) > max { // an empty array with max < 0
			return nil, fmt.Errorf("%w: %d, at most %d", ErrTooMany, len(rs), max)
		}
	}
	if err := expectDelim(dec, '}', "unterminated object"); err != nil {
		return nil, err
	}
	if !found {
		return nil, fieldErr("receipts", ErrMalformed, "missing")
	}
	return rs, nil
}

// verifyChunk is how many receipts a VerifyBatch worker takes at a time: a
// chunk costs about 1 ms of CPU, large enough to hide the scheduling cost and
// small enough to keep the cores evenly loaded.
const verifyChunk = 32

// VerifyBatch verifies every receipt and returns one error per receipt, nil
// for the valid ones; errs[i] is rs[i].Verify().
//
// The standard library has no ed25519 batch verification, so each signature
// is verified on its own (batch equations would also accept a slightly
// different set of edge-case signatures than single verification). Batches of
// more than verifyChunk receipts are spread over GOMAXPROCS goroutines; a
// caller that already runs its own worker pool can call Verify per receipt
// instead.
func VerifyBatch(rs []Receipt) []error {
	errs := make([]error, len(rs))
	workers := min(runtime.GOMAXPROCS(0), (len(rs)+verifyChunk-1)/verifyChunk)
	if workers <= 1 {
		for i := range rs {
			errs[i] = rs[i].Verify()
		}
		return errs
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				end := int(next.Add(verifyChunk))
				start := end - verifyChunk
				if start >= len(rs) {
					return
				}
				for i := start; i < min(end, len(rs)); i++ {
					errs[i] = rs[i].Verify()
				}
			}
		})
	}
	wg.Wait()
	return errs
}
