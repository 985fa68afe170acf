package rewards

import (
	"context"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/receipt.lua
var receiptLua string

// ReceiptConfig bounds what verified receipts may earn.
type ReceiptConfig struct {
	// MaxRedownload caps the bytes credited from one downloader on one
	// torrent, over all uploaders, at size x MaxRedownload (default 3).
	MaxRedownload float64 `yaml:"max_redownload"`
	// PairEpochCap caps the bytes one uploader earns from one downloader in
	// one epoch (default 64 GiB, at most 1 TiB).
	PairEpochCap uint64 `yaml:"pair_epoch_cap"`
	// UploaderEpochCap caps an uploader's verified bytes per epoch (default 4 TiB).
	UploaderEpochCap uint64 `yaml:"uploader_epoch_cap"`
	// MaxSkew is how far a receipt's time may be ahead of the tracker's clock.
	MaxSkew time.Duration `yaml:"max_skew"`
	// MaxBatch is the most receipts one submission may carry.
	MaxBatch int `yaml:"max_batch"`
}

// DefaultReceiptConfig returns the defaults.
func DefaultReceiptConfig() ReceiptConfig {
	return ReceiptConfig{MaxRedownload: 3, PairEpochCap: 64 << 30, UploaderEpochCap: 4 << 40, MaxSkew: 2 * time.Minute, MaxBatch: 1000}
}

// Validate names the bad key relative to the rewards section.
func (c ReceiptConfig) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("rewards.receipts.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if !(c.MaxRedownload >= 1 && c.MaxRedownload <= 100) {
		bad("max_redownload", "%v: must be 1..100", c.MaxRedownload)
	}
	if c.PairEpochCap == 0 || c.PairEpochCap > 1<<40 {
		bad("pair_epoch_cap", "%d: must be 1..2^40 bytes (1 TiB)", c.PairEpochCap)
	}
	if c.UploaderEpochCap == 0 || c.UploaderEpochCap > maxExact {
		bad("uploader_epoch_cap", "%d: must be 1..2^53-1 bytes", c.UploaderEpochCap)
	}
	if c.MaxSkew < 0 || c.MaxSkew > time.Hour {
		bad("max_skew", "%s: must be 0..1h", c.MaxSkew)
	}
	if c.MaxBatch < 1 || c.MaxBatch > 100000 {
		bad("max_batch", "%d: must be 1..100000", c.MaxBatch)
	}
	return errors.Join(errs...)
}

// VerifiedReceipt is a receipt whose signature and key owners the intake
// has checked: only the ledger rules remain.
type VerifiedReceipt struct {
	InfoHash      [20]byte
	UploaderKey   [32]byte
	DownloaderKey [32]byte
	Session       [8]byte
	Cumulative    uint64
	Time          int64  // the receipt's Unix seconds
	Uploader      string // user ids
	Downloader    string
	Size          int64  // registered torrent size
	Seeders       uint32 // seeders now (rarity)
}

// Receipt rejection reasons decided by the ledger.
const (
	ReasonStale        = "stale"         // its epoch is sealed
	ReasonFuture       = "future"        // time ahead of the tracker's clock
	ReasonNotAnnounced = "not_announced" // a user did not announce the torrent this epoch or the last
	ReasonSharedIP     = "shared_ip"     // the two users announced from a common address
	ReasonNotMonotonic = "not_monotonic" // replay: cumulative not above the last receipt
	ReasonCapped       = "capped"        // a cap left nothing to credit
)

var receiptReasons = map[int64]string{2: ReasonNotAnnounced, 3: ReasonSharedIP, 4: ReasonNotMonotonic, 5: ReasonCapped}

// KeyReceiptStats is the Redis hash counting receipts by outcome (accepted,
// each rejection reason, credited_bytes), shared by all tracker instances.
const KeyReceiptStats = "sp:receipts:stats"

// ReceiptOutcome says what one receipt earned: Reason is "" when it was
// credited (possibly partly, when a cap bound).
type ReceiptOutcome struct {
	Reason   string
	Credited uint64
}

// ReceiptLedger credits verified receipts as upload points.
type ReceiptLedger struct {
	rdb    redis.UniversalClient
	cfg    Config
	script *redis.Script
}

// NewReceiptLedger returns the ledger side of receipt intake.
func NewReceiptLedger(rdb redis.UniversalClient, cfg Config) (*ReceiptLedger, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &ReceiptLedger{rdb: rdb, cfg: cfg, script: redis.NewScript(receiptLua)}, nil
}

// UploadWeight is the micro-points one verified GiB earns: 1e6 x
// upload_rate x rarity(seeders).
func (s ScoringConfig) UploadWeight(seeders uint32) int64 {
	r := 1 / math.Pow(math.Max(float64(seeders), 1), s.RarityExponent)
	return min(int64(1e6*s.UploadRate*r), 1<<20)
}

// Credit applies the receipts in order (one pipeline) and returns one
// outcome per receipt; a receipt whose script call failed has Reason
// "error". When Redis cannot be reached at all it returns nil outcomes and
// the error: the caller must not count anything.
func (l *ReceiptLedger) Credit(ctx context.Context, items []VerifiedReceipt, now time.Time, pools func([20]byte) []string) ([]ReceiptOutcome, error) {
	out := make([]ReceiptOutcome, len(items))
	minOpen := l.cfg.Epoch.MinOpenEpoch(now)
	ttl := int64((l.cfg.Epoch.Retention + 2*l.cfg.Epoch.Length) / time.Second)
	pipe := l.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(items))
	type call struct {
		keys []string
		args []any
	}
	calls := make([]call, len(items))
	for i, r := range items {
		n := l.cfg.Epoch.EpochOf(r.Time)
		switch {
		case r.Time > now.Add(l.cfg.Receipts.MaxSkew).Unix():
			out[i].Reason = ReasonFuture
			continue
		case n < minOpen:
			out[i].Reason = ReasonStale
			continue
		}
		ih := hex.EncodeToString(r.InfoHash[:])
		tag := "sp:{r:" + ih + "}:"
		keys := []string{
			tag + "p:" + hex.EncodeToString(r.UploaderKey[:]) + ":" + hex.EncodeToString(r.DownloaderKey[:]) + ":" + hex.EncodeToString(r.Session[:]),
			tag + "dl:" + r.Downloader,
			fmt.Sprintf("%spe:%s:%s:%d", tag, r.Uploader, r.Downloader, n),
			KeyUserEpoch(r.Uploader, n),
			KeyEpochUsers(n),
			KeyTorrentIPs(r.Uploader, ih, n), KeyTorrentIPs(r.Uploader, ih, n-1),
			KeyTorrentIPs(r.Downloader, ih, n), KeyTorrentIPs(r.Downloader, ih, n-1),
		}
		dlCap := uint64(math.Min(float64(r.Size)*l.cfg.Receipts.MaxRedownload, float64(maxExact)))
		poolArg := GlobalPool
		if pools != nil {
			poolArg = strings.Join(pools(r.InfoHash), ",")
		}
		calls[i] = call{keys, []any{min(r.Cumulative, uint64(maxExact)), dlCap, l.cfg.Receipts.PairEpochCap,
			l.cfg.Receipts.UploaderEpochCap, l.cfg.Scoring.UploadWeight(r.Seeders), poolArg, ttl, r.Uploader}}
		cmds[i] = l.script.EvalSha(ctx, pipe, keys, calls[i].args...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		var rerr redis.Error
		if !errors.As(err, &rerr) { // a network error, not a per-command one: nothing is known
			return nil, fmt.Errorf("rewards: credit receipts: %w", err)
		}
	}
	var retry []int
	for i, c := range cmds {
		if c != nil && redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			retry = append(retry, i)
		}
	}
	if len(retry) > 0 { // a refused EVALSHA did nothing: retrying is safe
		if err := l.script.Load(ctx, l.rdb).Err(); err != nil {
			return nil, fmt.Errorf("rewards: load receipt.lua: %w", err)
		}
		pipe = l.rdb.Pipeline()
		for _, i := range retry {
			cmds[i] = l.script.EvalSha(ctx, pipe, calls[i].keys, calls[i].args...)
		}
		_, _ = pipe.Exec(ctx)
	}
	var errs []error
	for i, c := range cmds {
		if c == nil {
			continue
		}
		v, err := c.Int64Slice()
		if err != nil || len(v) != 2 {
			errs = append(errs, fmt.Errorf("receipt %d: %w", i, err))
			out[i].Reason = "error"
			continue
		}
		if v[0] == 1 {
			out[i].Credited = uint64(v[1])
		} else {
			out[i].Reason = receiptReasons[v[0]]
		}
	}
	return out, errors.Join(errs...)
}
