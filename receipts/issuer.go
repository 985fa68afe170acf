package receipts

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync"
	"time"
)

// An Issuer signs a downloader's receipts for one (torrent, uploader) pair in
// one session. It draws a random session id when created and refuses to sign a
// cumulative count below one it has already signed, since the tracker would
// credit nothing for it. A client makes a new Issuer (hence a new session)
// whenever its byte count restarts from zero, e.g. after a restart. An Issuer
// is safe for concurrent use.
type Issuer struct {
	key  ed25519.PrivateKey
	err  error   // from NewIssuer: every Receipt call returns it
	base Receipt // every field but Cumulative, Time and Signature

	mu   sync.Mutex
	last uint64 // highest cumulative signed so far
}

// NewIssuer returns an Issuer for receipts signed with downloaderKey for bytes
// of infoHash received from uploader. A malformed key, or the uploader's key
// being the downloader's own, is reported by every call to Receipt.
func NewIssuer(downloaderKey ed25519.PrivateKey, infoHash [20]byte, uploader [32]byte) *Issuer {
	i := &Issuer{base: Receipt{Version: Version1, InfoHash: infoHash, Uploader: uploader}}
	pub, err := checkPrivateKey(downloaderKey)
	if err == nil && pub == uploader {
		err = fmt.Errorf("receipts: %w: the uploader key is the downloader's own key", ErrKey)
	}
	if err != nil {
		i.err = err
		return i
	}
	i.key = append(ed25519.PrivateKey(nil), downloaderKey...)
	i.base.Downloader = pub
	rand.Read(i.base.Session[:]) // never fails (crypto/rand crashes the program instead)
	return i
}

// Session returns the issuer's random session id.
func (i *Issuer) Session() [8]byte { return i.base.Session }

// Receipt signs a receipt for cumulative bytes received so far in this
// session, at time now. It fails, wrapping ErrDecreasing, if cumulative is
// below a count this Issuer has already signed (an equal count is signed
// again, with the new time), or ErrTime if now is before 1970.
func (i *Issuer) Receipt(cumulative uint64, now time.Time) (Receipt, error) {
	if i.err != nil {
		return Receipt{}, i.err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if cumulative < i.last {
		return Receipt{}, fmt.Errorf("receipts: %w: %d is below %d, already signed in this session", ErrDecreasing, cumulative, i.last)
	}
	r := i.base
	r.Cumulative = cumulative
	r.Time = now.Unix()
	if err := sign(&r, i.key, i.base.Downloader); err != nil {
		return Receipt{}, err
	}
	i.last = cumulative
	return r, nil
}
