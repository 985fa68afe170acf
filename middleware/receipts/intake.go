// Package receipts is the tracker's intake of signed upload receipts:
// POST /receipts/<passkey> with a batch (binary or JSON). It verifies
// signatures on a bounded worker pool, resolves keys to users, and hands
// what survives to the reward ledger; every receipt gets an answer and every
// rejection is counted by reason.
package receipts

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/middleware/registry"
	"github.com/seedpay/seedpay/receipts"
	"github.com/seedpay/seedpay/rewards"
)

// Rejection reasons decided here; the ledger adds its own (rewards.Reason*).
const (
	ReasonBadSignature         = "bad_signature"
	ReasonBadKey               = "bad_key" // a weak or malformed ed25519 key (see docs/receipts.md)
	ReasonUnknownUploaderKey   = "unknown_uploader_key"
	ReasonNotYourKey           = "uploader_key_not_yours"
	ReasonUnknownDownloaderKey = "unknown_downloader_key"
	ReasonSelfDealing          = "self_dealing"
	ReasonUnknownTorrent       = "unknown_torrent"
)

// Reasons lists every rejection reason, for stats.
var Reasons = []string{ReasonBadSignature, ReasonBadKey, ReasonUnknownUploaderKey, ReasonNotYourKey, ReasonUnknownDownloaderKey,
	ReasonSelfDealing, ReasonUnknownTorrent, rewards.ReasonStale, rewards.ReasonFuture, rewards.ReasonNotAnnounced,
	rewards.ReasonSharedIP, rewards.ReasonNotMonotonic, rewards.ReasonCapped, "error"}

// Lookup is what the intake needs of the registry cache.
type Lookup interface {
	UserByPasskey(passkey string) (*registry.User, bool)
	Torrent(ih bittorrent.InfoHash) (*registry.Entry, bool)
}

// Swarms gives the seeders of a torrent (rarity).
type Swarms interface {
	ScrapeSwarm(ih bittorrent.InfoHash, af bittorrent.AddressFamily) bittorrent.Scrape
}

// Intake handles receipt submissions.
type Intake struct {
	lookup  Lookup
	swarms  Swarms
	keys    *rewards.ReceiptKeys
	ledger  *rewards.ReceiptLedger
	rdb     redis.UniversalClient
	max     int
	sem     chan struct{}
	log     *zap.Logger
	now     func() time.Time
	results *prometheus.CounterVec
	bytes   prometheus.Counter
	pools   func([20]byte) []string
}

// SetPools sets the lookup of the pools covering a torrent (the global pool
// among them); without it receipts credit the global pool only.
func (in *Intake) SetPools(pools func(infoHash [20]byte) []string) { in.pools = pools }

// New returns the intake; workers bounds batches verified at once.
func New(lookup Lookup, swarms Swarms, keys *rewards.ReceiptKeys, ledger *rewards.ReceiptLedger, rdb redis.UniversalClient,
	cfg rewards.ReceiptConfig, workers int, reg prometheus.Registerer, log *zap.Logger) (*Intake, error) {
	if workers <= 0 {
		workers = 2
	}
	in := &Intake{lookup: lookup, swarms: swarms, keys: keys, ledger: ledger, rdb: rdb, max: cfg.MaxBatch,
		sem: make(chan struct{}, workers), log: log, now: time.Now,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "receipts", Name: "total",
			Help: "Receipts by result: accepted, or the rejection reason."}, []string{"result"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "receipts", Name: "credited_bytes_total",
			Help: "Upload bytes credited from verified receipts."}),
	}
	for _, c := range []prometheus.Collector{in.results, in.bytes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// Result and BatchResult are the intake's wire answer, defined with the SDK.
type (
	Result      = receipts.Result
	BatchResult = receipts.BatchResult
)

// ErrUnknownPasskey is answered 403.
var ErrUnknownPasskey = errors.New("unknown passkey")

// ServeHTTP handles POST /receipts/{passkey}: a binary batch
// (application/octet-stream, concatenated receipts) or JSON {"receipts":[...]}.
func (in *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u, ok := in.lookup.UserByPasskey(r.PathValue("passkey"))
	if !ok || u.Banned {
		writeError(w, http.StatusForbidden, "unknown passkey or account disabled")
		return
	}
	limit := int64(in.max)*(receipts.MaxJSONSize+1) + 64 // the JSON form is the larger
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "batch too large: at most "+itoa(in.max)+" receipts")
		return
	}
	var rs []receipts.Receipt
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		rs, err = receipts.DecodeJSONBatch(body, in.max)
	} else {
		rs, err = receipts.DecodeBatch(body, in.max)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	select {
	case in.sem <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	res, err := in.Process(r.Context(), u.ID, rs)
	<-in.sem
	if err != nil {
		in.log.Error("receipt batch failed", zap.String("user_id", u.ID), zap.Int("receipts", len(rs)), zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, "ledger unavailable, submit again")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// Process checks and credits a batch submitted by user (the uploader).
func (in *Intake) Process(ctx context.Context, user string, rs []receipts.Receipt) (BatchResult, error) {
	res := BatchResult{Results: make([]Result, len(rs))}
	reasons := make([]string, len(rs))
	for i, err := range receipts.VerifyBatch(rs) {
		switch {
		case err == nil:
		case errors.Is(err, receipts.ErrKey):
			reasons[i] = ReasonBadKey
		default:
			reasons[i] = ReasonBadSignature
		}
	}
	pubs := make([][32]byte, 0, 2*len(rs))
	for _, r := range rs {
		pubs = append(pubs, r.Uploader, r.Downloader)
	}
	owners, err := in.keys.Owners(ctx, pubs)
	if err != nil {
		return res, err
	}
	var verified []rewards.VerifiedReceipt
	var index []int
	for i, r := range rs {
		if reasons[i] != "" {
			continue
		}
		up, down := owners[2*i], owners[2*i+1]
		t, registered := in.lookup.Torrent(r.InfoHash)
		switch {
		case up == "":
			reasons[i] = ReasonUnknownUploaderKey
		case up != user:
			reasons[i] = ReasonNotYourKey
		case down == "":
			reasons[i] = ReasonUnknownDownloaderKey
		case down == up:
			reasons[i] = ReasonSelfDealing
		case !registered:
			reasons[i] = ReasonUnknownTorrent
		default:
			sc := in.swarms.ScrapeSwarm(r.InfoHash, bittorrent.IPv4)
			sc6 := in.swarms.ScrapeSwarm(r.InfoHash, bittorrent.IPv6)
			verified = append(verified, rewards.VerifiedReceipt{InfoHash: r.InfoHash, UploaderKey: r.Uploader, DownloaderKey: r.Downloader,
				Session: r.Session, Cumulative: r.Cumulative, Time: r.Time, Uploader: up, Downloader: down,
				Size: t.Size, Seeders: sc.Complete + sc6.Complete})
			index = append(index, i)
		}
	}
	outcomes, err := in.ledger.Credit(ctx, verified, in.now(), in.pools)
	if err != nil && outcomes == nil {
		return res, err // nothing applied: the uploader submits again, nothing is counted
	}
	credited := make([]uint64, len(rs))
	for j, o := range outcomes {
		reasons[index[j]], credited[index[j]] = o.Reason, o.Credited
	}
	counts := map[string]int64{}
	for i := range rs {
		if reasons[i] == "" {
			res.Results[i] = Result{Index: i, Status: "accepted", Credited: credited[i]}
			res.Accepted++
			res.CreditedBytes += credited[i]
			counts["accepted"]++
		} else {
			res.Results[i] = Result{Index: i, Status: "rejected", Reason: reasons[i]}
			res.Rejected++
			counts[reasons[i]]++
		}
	}
	for k, n := range counts {
		in.results.WithLabelValues(k).Add(float64(n))
	}
	in.bytes.Add(float64(res.CreditedBytes))
	_, serr := in.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for k, n := range counts {
			p.HIncrBy(ctx, rewards.KeyReceiptStats, k, n)
		}
		if res.CreditedBytes > 0 {
			p.HIncrBy(ctx, rewards.KeyReceiptStats, "credited_bytes", int64(res.CreditedBytes))
		}
		return nil
	})
	if serr != nil {
		in.log.Warn("receipt stats not stored", zap.Error(serr))
	}
	if res.Rejected > 0 {
		in.log.Info("receipts rejected", zap.String("user_id", user), zap.Int("accepted", res.Accepted), zap.Int("rejected", res.Rejected))
	}
	return res, err
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
