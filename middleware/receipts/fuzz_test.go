package receipts

import (
	"net/http"
	"testing"

	"github.com/seedpay/seedpay/receipts"
)

// FuzzIntake posts arbitrary bodies, binary and JSON, to the intake: it must
// never panic, never answer 5xx while Redis is up, and answer every receipt
// of an accepted batch.
func FuzzIntake(f *testing.F) {
	e := newEnv(f)
	good := e.receipt(1<<20, nil)
	f.Add(good.Encode(), false)
	f.Add(receipts.EncodeBatch([]receipts.Receipt{good, good}), false)
	js, _ := receipts.EncodeJSONBatch([]receipts.Receipt{good})
	f.Add(js, true)
	f.Add([]byte(`{"receipts":[]}`), true)
	f.Add([]byte(`{"receipts":[{"version":1}]}`), true)
	f.Add([]byte{1, 2, 3}, false)
	f.Fuzz(func(t *testing.T, body []byte, asJSON bool) {
		ct := "application/octet-stream"
		if asJSON {
			ct = "application/json"
		}
		rec, res := e.post(e.up.Passkey, ct, body)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Code == http.StatusOK && len(res.Results) != res.Accepted+res.Rejected {
			t.Fatalf("answered %d of %d+%d receipts", len(res.Results), res.Accepted, res.Rejected)
		}
	})
}
