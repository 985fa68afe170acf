package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/seedpay/seedpay/receipts"
)

// post submits one binary batch to POST /receipts/<passkey>. A non-200
// answer returns its status and a zero result.
func post(ctx context.Context, c *http.Client, target, passkey string, body []byte) (receipts.BatchResult, int, error) {
	var res receipts.BatchResult
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(target, "/")+"/receipts/"+passkey, bytes.NewReader(body))
	if err != nil {
		return res, 0, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.Do(req)
	if err != nil {
		return res, 0, err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return res, resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return res, resp.StatusCode, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(reply))
	}
	return res, resp.StatusCode, json.Unmarshal(reply, &res)
}

// result sums a timed phase.
type result struct {
	batches, failed   int // batches posted; of them, answered other than 200 or not at all
	sent              int // receipts posted
	accepted          int
	rejected          int
	reasons           map[string]int
	credited          uint64
	statuses          map[int]int // non-200 answers; 0: transport errors
	lat               []time.Duration
	elapsed           time.Duration
	maxLag            time.Duration // how far behind its schedule a batch was posted, at most
	unsent, unsentRcp int           // batches (receipts) of the plan not posted: time was up
	lastErr           string
}

func (r *result) add(b batch, res receipts.BatchResult, status int, err error, lat time.Duration) {
	r.batches++
	r.sent += b.n
	r.lat = append(r.lat, lat)
	if err != nil || status != http.StatusOK {
		r.failed++
		r.statuses[status]++
		if err != nil {
			r.lastErr = err.Error()
		}
		return
	}
	r.accepted += res.Accepted
	r.rejected += res.Rejected
	r.credited += res.CreditedBytes
	for _, x := range res.Results {
		if x.Status != "accepted" {
			r.reasons[x.Reason]++
		}
	}
	if missing := b.n - res.Accepted - res.Rejected; missing > 0 {
		r.reasons["unanswered"] += missing
	}
}

// send posts the plan's batches at rate receipts/s (batch g is due when the
// receipts before it are, at start + receipts_before/rate), each uploader's
// batches in order on one goroutine, until every batch is posted, duration
// has passed or ctx ends. A batch found due after the end is not posted.
func send(ctx context.Context, c *http.Client, target string, passkeys []string, p *plan, rate float64, duration time.Duration) *result {
	res := &result{reasons: map[string]int{}, statuses: map[int]int{}}
	start := time.Now()
	end := start.Add(duration)
	ctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()

	type job struct {
		b   batch
		due time.Time
	}
	queues := make([]chan job, len(passkeys))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for u := range passkeys {
		queues[u] = make(chan job, 4)
		wg.Go(func() {
			for j := range queues[u] {
				if ctx.Err() != nil {
					continue // drain: time is up
				}
				t := time.Now()
				// A batch under way when time runs out is still answered:
				// its receipts were sent, so they are counted.
				br, status, err := post(context.WithoutCancel(ctx), c, target, passkeys[u], j.b.body)
				lat := time.Since(t)
				mu.Lock()
				res.add(j.b, br, status, err, lat)
				res.maxLag = max(res.maxLag, t.Sub(j.due))
				mu.Unlock()
			}
		})
	}
	before := 0 // receipts scheduled before batch g
	g := 0
dispatch:
	for ; g < len(p.batches); g++ {
		b := p.batches[g]
		due := start.Add(time.Duration(float64(before) / rate * float64(time.Second)))
		if wait := time.Until(due); wait > 0 {
			select {
			case <-ctx.Done():
				break dispatch
			case <-time.After(wait):
			}
		}
		select {
		case <-ctx.Done():
			break dispatch
		case queues[b.uploader] <- job{b, due}:
		}
		before += b.n
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	// To the last answer, but at least the schedule's span of what was
	// posted: a batch is due at the start of its share of the window.
	res.elapsed = max(time.Since(start), time.Duration(float64(res.sent)/rate*float64(time.Second)))
	res.unsent = len(p.batches) - res.batches
	res.unsentRcp = p.receipts - res.sent
	return res
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func (r *result) print(w io.Writer) {
	sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] })
	secs := r.elapsed.Seconds()
	per := func(n int) float64 {
		if secs <= 0 {
			return 0
		}
		return float64(n) / secs
	}
	reasons := make([]string, 0, len(r.reasons))
	for k, n := range r.reasons {
		reasons = append(reasons, fmt.Sprintf("%s:%d", k, n))
	}
	sort.Strings(reasons)
	statuses := make([]string, 0, len(r.statuses))
	for k, n := range r.statuses {
		statuses = append(statuses, fmt.Sprintf("%d:%d", k, n))
	}
	sort.Strings(statuses)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Fprintf(w, "receipts: posted %d in %d batches over %.2fs: accepted %d (%.0f/s), rejected %d %v; failed batches %d %v; batch latency p50 %.1f ms p99 %.1f ms; max lag behind schedule %.1f ms; not posted (time up or stopped) %d receipts\n",
		r.sent, r.batches, secs, r.accepted, per(r.accepted), r.rejected, reasons, r.failed, statuses,
		ms(percentile(r.lat, 0.5)), ms(percentile(r.lat, 0.99)), ms(r.maxLag), r.unsentRcp)
	if r.lastErr != "" {
		fmt.Fprintf(w, "last error: %s\n", r.lastErr)
	}
	none := func(s []string) string {
		if len(s) == 0 {
			return "none"
		}
		return strings.Join(s, ",")
	}
	fmt.Fprintf(w, "RESULT sent=%d accepted=%d rejected=%d sent_per_s=%.0f accepted_per_s=%.0f batches=%d failed_batches=%d credited_bytes=%d elapsed_s=%.2f p50_ms=%.1f p99_ms=%.1f max_lag_ms=%.1f reasons=%s statuses=%s\n",
		r.sent, r.accepted, r.rejected, per(r.sent), per(r.accepted), r.batches, r.failed, r.credited, secs,
		ms(percentile(r.lat, 0.5)), ms(percentile(r.lat, 0.99)), ms(r.maxLag), none(reasons), none(statuses))
}
