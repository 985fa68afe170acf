package peer

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/seedpay/seedpay/receipts"
)

// Endpoints are the tracker URLs of one account, derived from its announce
// URL.
type Endpoints struct {
	Announce string // http(s)://host[:port]/announce/<passkey>
	Receipts string // POST a batch of receipts
	Keys     string // POST {"key","signature"}: register a receipt key
	Passkey  string
}

// EndpointsFromAnnounce derives the receipt and key URLs from an HTTP(S)
// announce URL ending in /announce/<passkey> (any path before it is kept,
// for a tracker behind a prefix).
func EndpointsFromAnnounce(announce string) (Endpoints, error) {
	u, err := url.Parse(announce)
	if err != nil {
		return Endpoints{}, fmt.Errorf("announce URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Endpoints{}, fmt.Errorf("announce URL %q: want http(s)://host/announce/<passkey> (receipts are submitted over HTTP)", announce)
	}
	prefix, passkey, ok := strings.Cut(u.Path, "/announce/")
	if !ok || passkey == "" || strings.Contains(passkey, "/") || strings.Contains(prefix, "/announce/") {
		return Endpoints{}, fmt.Errorf("announce URL %q: the path must end in /announce/<passkey>", announce)
	}
	base := *u
	base.RawQuery, base.Fragment, base.RawPath = "", "", ""
	mk := func(p string) string {
		b := base
		b.Path = prefix + "/" + p + "/" + passkey
		return b.String()
	}
	return Endpoints{Announce: announce, Receipts: mk("receipts"), Keys: mk("keys"), Passkey: passkey}, nil
}

// RegisterKey registers key's public half for the account of the passkey
// (POST /keys/<passkey> with receipts.SignRegistration). Registering a key
// the account already has succeeds again.
func RegisterKey(ctx context.Context, hc *http.Client, ep Endpoints, key ed25519.PrivateKey) error {
	pub, sig, err := receipts.SignRegistration(key, ep.Passkey)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]string{"key": hex.EncodeToString(pub[:]), "signature": hex.EncodeToString(sig)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.Keys, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("register key: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("register key: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// Result and BatchResult are the intake's wire answer, defined with the SDK.
type (
	Result      = receipts.Result
	BatchResult = receipts.BatchResult
)

// Post submits rs as one binary batch to url and returns the tracker's
// answer. A non-200 status is an error (the receipts were not judged).
func Post(ctx context.Context, hc *http.Client, url string, rs []receipts.Receipt) (BatchResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(receipts.EncodeBatch(rs)))
	if err != nil {
		return BatchResult{}, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := hc.Do(req)
	if err != nil {
		return BatchResult{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<22))
	if err != nil {
		return BatchResult{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return BatchResult{}, fmt.Errorf("POST receipts: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var res BatchResult
	if err := json.Unmarshal(b, &res); err != nil {
		return BatchResult{}, fmt.Errorf("POST receipts: answer %q: %w", b, err)
	}
	if len(res.Results) != len(rs) {
		return res, fmt.Errorf("POST receipts: %d results for %d receipts", len(res.Results), len(rs))
	}
	for i, r := range res.Results {
		if r.Index != i {
			return res, fmt.Errorf("POST receipts: result %d has index %d", i, r.Index)
		}
	}
	return res, nil
}

// RetryReasons are rejections that may pass later (the tracker's ledger
// was busy, or an announce it needs has not been counted yet); the
// others are final for that receipt.
var RetryReasons = map[string]bool{"error": true, "not_announced": true}

// A Submitter sends a Collector's pending receipts to the tracker.
type Submitter struct {
	URL       string
	HTTP      *http.Client
	Collector *Collector
	// MaxBatch receipts per request (default 500; the tracker's
	// rewards.receipts.max_batch defaults to 1000).
	MaxBatch int
	// MaxAttempts for a receipt rejected with a RetryReasons reason
	// (default 5).
	MaxAttempts int
	// OnResult, when set, is told the answer for every receipt submitted.
	OnResult func(receipts.Receipt, Result)
}

// Submission sums what one Submit call sent and got.
type Submission struct {
	Submitted, Accepted, Rejected int
	CreditedBytes                 uint64
}

// Submit posts every pending receipt (in batches) and records the answers.
// It stops at the first failed request, leaving the rest pending.
func (s *Submitter) Submit(ctx context.Context) (Submission, error) {
	maxBatch, maxAttempts := s.MaxBatch, s.MaxAttempts
	if maxBatch <= 0 {
		maxBatch = 500
	}
	if maxAttempts <= 0 {
		maxAttempts = 5
	}
	hc := s.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	var sum Submission
	pending := s.Collector.Pending(0)
	for len(pending) > 0 {
		n := min(len(pending), maxBatch)
		batch := pending[:n]
		pending = pending[n:]
		res, err := Post(ctx, hc, s.URL, batch)
		if err != nil {
			return sum, err
		}
		sum.Submitted += n
		sum.Accepted += res.Accepted
		sum.Rejected += res.Rejected
		sum.CreditedBytes += res.CreditedBytes
		for i, r := range res.Results {
			s.Collector.Answered(batch[i], r.Status != "accepted" && RetryReasons[r.Reason], maxAttempts)
			if s.OnResult != nil {
				s.OnResult(batch[i], r)
			}
		}
	}
	return sum, nil
}
