package rewards

import (
	"context"
	"encoding/hex"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seedpay/seedpay/internal/redistest"
)

const (
	rcEpochLen = 60
	rcEpoch    = 1000
	rcGiB      = 1 << 30
)

var rcNow = time.Unix(rcEpoch*rcEpochLen+30, 0)

type receiptEnv struct {
	t   *testing.T
	rdb *redis.Client
	l   *ReceiptLedger
	ih  [20]byte
}

func newReceiptEnv(t *testing.T, mutate func(*Config)) *receiptEnv {
	t.Helper()
	cfg := testConfig("1000")
	if mutate != nil {
		mutate(&cfg)
	}
	rdb := redistest.Start(t).Client(t)
	l, err := NewReceiptLedger(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &receiptEnv{t: t, rdb: rdb, l: l}
	e.ih[0] = 0xab
	return e
}

// announced records that user announced the torrent from ip in epoch n.
func (e *receiptEnv) announced(user, ip string, n int64) {
	e.rdb.SAdd(context.Background(), KeyTorrentIPs(user, hex.EncodeToString(e.ih[:]), n), ip)
}

func (e *receiptEnv) receipt(session byte, cumulative uint64) VerifiedReceipt {
	r := VerifiedReceipt{InfoHash: e.ih, Cumulative: cumulative, Time: rcNow.Unix() - 5, Uploader: "up", Downloader: "down", Size: 10 * rcGiB, Seeders: 1}
	r.UploaderKey[0], r.DownloaderKey[0], r.Session[0] = 1, 2, session
	return r
}

func (e *receiptEnv) credit(rs ...VerifiedReceipt) []ReceiptOutcome {
	e.t.Helper()
	out, err := e.l.Credit(context.Background(), rs, rcNow, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *receiptEnv) field(f string) int64 {
	v, _ := e.rdb.HGet(context.Background(), KeyUserEpoch("up", rcEpoch), f).Result()
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

func TestReceiptCreditsDeltasAsUploadPoints(t *testing.T) {
	e := newReceiptEnv(t, nil)
	e.announced("up", "10.0.0.1", rcEpoch)
	e.announced("down", "10.0.0.2", rcEpoch-1) // the previous epoch counts too
	out := e.credit(e.receipt(1, rcGiB), e.receipt(1, 3*rcGiB/2))
	if out[0] != (ReceiptOutcome{Credited: rcGiB}) || out[1] != (ReceiptOutcome{Credited: rcGiB / 2}) {
		t.Fatalf("outcomes %+v, want 1 GiB then the 0.5 GiB delta", out)
	}
	w := testConfig("1").Scoring.UploadWeight(1)
	if got := e.field("pts:global"); got != w+w/2 {
		t.Fatalf("points %d, want %d (1.5 GiB x %d per GiB)", got, w+w/2, w)
	}
	if got := e.field("up_verified"); got != 3*rcGiB/2 {
		t.Fatalf("up_verified %d", got)
	}
	if ok, _ := e.rdb.SIsMember(context.Background(), KeyEpochUsers(rcEpoch), "up").Result(); !ok {
		t.Fatal("uploader not in the epoch's users: the settler would skip the points")
	}
}

func TestReceiptRejections(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(e *receiptEnv)
		r      func(e *receiptEnv) []VerifiedReceipt
		want   string
		points bool
	}{
		{"downloader never announced", func(e *receiptEnv) { e.announced("up", "10.0.0.1", rcEpoch) },
			func(e *receiptEnv) []VerifiedReceipt { return []VerifiedReceipt{e.receipt(1, rcGiB)} }, ReasonNotAnnounced, false},
		{"announced only two epochs ago", func(e *receiptEnv) {
			e.announced("up", "10.0.0.1", rcEpoch)
			e.announced("down", "10.0.0.2", rcEpoch-2)
		}, func(e *receiptEnv) []VerifiedReceipt { return []VerifiedReceipt{e.receipt(1, rcGiB)} }, ReasonNotAnnounced, false},
		{"same address", func(e *receiptEnv) {
			e.announced("up", "10.0.0.1", rcEpoch)
			e.announced("down", "10.0.0.9", rcEpoch)
			e.announced("down", "10.0.0.1", rcEpoch-1)
		}, func(e *receiptEnv) []VerifiedReceipt { return []VerifiedReceipt{e.receipt(1, rcGiB)} }, ReasonSharedIP, false},
		{"replayed receipt", both, func(e *receiptEnv) []VerifiedReceipt {
			return []VerifiedReceipt{e.receipt(1, rcGiB), e.receipt(1, rcGiB)}
		}, ReasonNotMonotonic, true},
		{"older cumulative", both, func(e *receiptEnv) []VerifiedReceipt {
			return []VerifiedReceipt{e.receipt(1, rcGiB), e.receipt(1, rcGiB/2)}
		}, ReasonNotMonotonic, true},
		{"epoch sealed", both, func(e *receiptEnv) []VerifiedReceipt {
			r := e.receipt(1, rcGiB)
			r.Time = (rcEpoch-2)*rcEpochLen + 1
			return []VerifiedReceipt{r}
		}, ReasonStale, false},
		{"from the future", both, func(e *receiptEnv) []VerifiedReceipt {
			r := e.receipt(1, rcGiB)
			r.Time = rcNow.Add(time.Hour).Unix()
			return []VerifiedReceipt{r}
		}, ReasonFuture, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newReceiptEnv(t, nil)
			tt.setup(e)
			rs := tt.r(e)
			out := e.credit(rs...)
			if got := out[len(out)-1].Reason; got != tt.want {
				t.Fatalf("outcomes %+v, want the last refused with %q", out, tt.want)
			}
			if got := e.field("pts:global"); (got > 0) != tt.points {
				t.Fatalf("points %d after the refusal (earlier receipts earning: %v)", got, tt.points)
			}
		})
	}
}

func both(e *receiptEnv) {
	e.announced("up", "10.0.0.1", rcEpoch)
	e.announced("down", "10.0.0.2", rcEpoch)
}

func TestReceiptCaps(t *testing.T) {
	t.Run("per downloader total over all uploaders and sessions", func(t *testing.T) {
		e := newReceiptEnv(t, nil) // max_redownload 3
		both(e)
		r := e.receipt(1, 0)
		r.Size = 1 << 20
		r.Cumulative = 2 << 20
		a := r
		b := r
		b.Session[0] = 2 // a second session of the same downloader
		b.Cumulative = 5 << 20
		out := e.credit(a, b)
		if out[0].Credited != 2<<20 || out[1].Credited != 1<<20 {
			t.Fatalf("outcomes %+v, want 2 MiB then the 1 MiB left under 3 x size", out)
		}
		b.Cumulative = 6 << 20
		if out := e.credit(b); out[0].Reason != ReasonCapped {
			t.Fatalf("over the cap: %+v", out)
		}
	})
	t.Run("per pair per epoch", func(t *testing.T) {
		e := newReceiptEnv(t, func(c *Config) { c.Receipts.PairEpochCap = 1 << 20 })
		both(e)
		if out := e.credit(e.receipt(1, 5<<20)); out[0].Credited != 1<<20 {
			t.Fatalf("%+v, want the 1 MiB pair cap", out)
		}
	})
	t.Run("per uploader per epoch", func(t *testing.T) {
		e := newReceiptEnv(t, func(c *Config) { c.Receipts.UploaderEpochCap = 3 << 20 })
		both(e)
		e.announced("down2", "10.0.0.3", rcEpoch)
		r2 := e.receipt(1, 2<<20)
		r2.Downloader, r2.DownloaderKey[0] = "down2", 3
		out := e.credit(e.receipt(1, 2<<20), r2)
		if out[0].Credited != 2<<20 || out[1].Credited != 1<<20 {
			t.Fatalf("%+v, want 2 MiB then 1 MiB under the uploader cap", out)
		}
	})
}

func TestReceiptNoScriptRecovery(t *testing.T) {
	e := newReceiptEnv(t, nil)
	both(e)
	e.credit(e.receipt(1, rcGiB))
	e.rdb.ScriptFlush(context.Background())
	if out := e.credit(e.receipt(1, 2*rcGiB)); out[0].Credited != rcGiB {
		t.Fatalf("after SCRIPT FLUSH: %+v", out)
	}
}

func TestReceiptConfigValidate(t *testing.T) {
	for _, mutate := range []func(*ReceiptConfig){
		func(c *ReceiptConfig) { c.MaxRedownload = 0.5 },
		func(c *ReceiptConfig) { c.PairEpochCap = 1<<40 + 1 },
		func(c *ReceiptConfig) { c.UploaderEpochCap = 0 },
		func(c *ReceiptConfig) { c.MaxBatch = 0 },
	} {
		c := DefaultReceiptConfig()
		mutate(&c)
		if c.Validate() == nil {
			t.Errorf("accepted %+v", c)
		}
	}
}
