package api

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/seedpay/seedpay/chain"
	"github.com/seedpay/seedpay/rewards"
)

type testWallet struct {
	key  *ecdsa.PrivateKey
	addr string
}

func newTestWallet(t testing.TB) testWallet {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return testWallet{k, chain.AddressOf(k)}
}

func (w testWallet) sign(t testing.TB, msg string) string {
	t.Helper()
	sig, err := chain.SignMessage(w.key, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	return "0x" + hex.EncodeToString(sig)
}

// addressEnv is an API with the payout-address routes and a user.
func addressEnv(t *testing.T) (e *env, user string) {
	t.Helper()
	e = newEnv(t, quiet())
	core, logs := observer.New(zapcore.DebugLevel)
	e.logs = logs
	var err error
	e.srv, err = New(Config{AdminToken: testToken}, Deps{Store: e.store, Cache: e.cache, Swarms: e.swarms, Gatherer: e.reg,
		Log: zap.New(core), Addresses: rewards.NewAddresses(e.rdb, chain.TIP191{})})
	if err != nil {
		t.Fatal(err)
	}
	rec := e.do(http.MethodPost, "/api/v1/users", `{"name":"alice"}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("create user: %d %s", rec.Code, rec.Body)
	}
	return e, decodeBody[userJSON](t, rec).ID
}

func (e *env) challenge(t *testing.T, user string) challengeJSON {
	t.Helper()
	rec := e.do(http.MethodGet, "/api/v1/users/"+user+"/payout-address/challenge", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("challenge: %d %s", rec.Code, rec.Body)
	}
	wantKeys(t, rec, "message", "nonce", "expires_at")
	return decodeBody[challengeJSON](t, rec)
}

func linkBody(address, message, signature string) string {
	b, _ := json.Marshal(map[string]string{"address": address, "message": message, "signature": signature})
	return string(b)
}

func (e *env) link(user, body string) *httptest.ResponseRecorder {
	return e.do(http.MethodPut, "/api/v1/users/"+user+"/payout-address", body)
}

func TestPayoutAddressLink(t *testing.T) {
	e, user := addressEnv(t)
	w := newTestWallet(t)

	rec := e.do(http.MethodGet, "/api/v1/users/"+user+"/payout-address", "")
	if got := decodeBody[payoutAddressJSON](t, rec); rec.Code != http.StatusOK || got.Address != "" || got.User != user {
		t.Fatalf("before: %d %s", rec.Code, rec.Body)
	}

	c := e.challenge(t, user)
	want := rewards.ChallengeMessage(user, c.Nonce, mustTime(t, c.ExpiresAt))
	if c.Message != want {
		t.Fatalf("message %q, want %q", c.Message, want)
	}
	if !strings.HasPrefix(c.Message, "seedpay payout address for user "+user+"\nnonce: "+c.Nonce+"\nexpires: ") {
		t.Fatalf("message %q", c.Message)
	}
	if d := time.Until(mustTime(t, c.ExpiresAt)); d < rewards.ChallengeTTL-2*time.Second || d > rewards.ChallengeTTL {
		t.Fatalf("expires in %v", d)
	}

	sig := w.sign(t, c.Message)
	rec = e.link(user, linkBody(w.addr, c.Message, sig))
	if rec.Code != http.StatusOK {
		t.Fatalf("link: %d %s", rec.Code, rec.Body)
	}
	wantKeys(t, rec, "user", "address")
	if got := decodeBody[payoutAddressJSON](t, rec); got.User != user || got.Address != w.addr {
		t.Fatalf("link answered %+v", got)
	}
	rec = e.do(http.MethodGet, "/api/v1/users/"+user+"/payout-address", "")
	if got := decodeBody[payoutAddressJSON](t, rec); got.Address != w.addr {
		t.Fatalf("after: %s", rec.Body)
	}

	// Logged with user and address, never the signature.
	entries := e.logs.FilterMessage("payout address linked").All()
	if len(entries) != 1 {
		t.Fatalf("%d 'linked' log entries", len(entries))
	}
	if m := entries[0].ContextMap(); m["user_id"] != user || m["address"] != w.addr {
		t.Fatalf("log fields %v", m)
	}
	sigHex := strings.TrimPrefix(sig, "0x")
	for _, en := range e.logs.All() {
		b, _ := json.Marshal(en.ContextMap())
		if strings.Contains(string(b)+en.Message, sigHex[:40]) {
			t.Fatalf("signature logged: %s %s", en.Message, b)
		}
	}

	// Reusing the used challenge is refused, and so is replaying it for
	// another address.
	rec = e.link(user, linkBody(w.addr, c.Message, sig))
	wantError(t, rec, http.StatusConflict, "stale", "no open challenge")
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestPayoutAddressRefusals(t *testing.T) {
	e, user := addressEnv(t)
	w, other := newTestWallet(t), newTestWallet(t)

	t.Run("tampered message", func(t *testing.T) {
		c := e.challenge(t, user)
		sig := w.sign(t, c.Message)
		tampered := strings.Replace(c.Message, c.Nonce, strings.Repeat("0", len(c.Nonce)), 1)
		wantError(t, e.link(user, linkBody(w.addr, tampered, sig)), http.StatusConflict, "not user "+user+"'s current challenge")
	})
	t.Run("signature over another message", func(t *testing.T) {
		c := e.challenge(t, user)
		sig := w.sign(t, c.Message+"x")
		wantError(t, e.link(user, linkBody(w.addr, c.Message, sig)), http.StatusUnprocessableEntity, `"signature"`, "not "+w.addr)
	})
	t.Run("another address's signature", func(t *testing.T) {
		c := e.challenge(t, user)
		msg := wantError(t, e.link(user, linkBody(w.addr, c.Message, other.sign(t, c.Message))), http.StatusUnprocessableEntity,
			`"signature"`, "is by "+other.addr+", not "+w.addr)
		if strings.Contains(msg, c.Nonce) {
			t.Errorf("error echoes the message: %s", msg)
		}
	})
	t.Run("old nonce after a new challenge", func(t *testing.T) {
		old := e.challenge(t, user)
		_ = e.challenge(t, user)
		wantError(t, e.link(user, linkBody(w.addr, old.Message, w.sign(t, old.Message))), http.StatusConflict, "stale")
	})
	t.Run("reuse of a used challenge", func(t *testing.T) {
		c := e.challenge(t, user)
		if rec := e.link(user, linkBody(w.addr, c.Message, w.sign(t, c.Message))); rec.Code != http.StatusOK {
			t.Fatalf("first use: %d %s", rec.Code, rec.Body)
		}
		// Even with a valid signature by another address.
		wantError(t, e.link(user, linkBody(other.addr, c.Message, other.sign(t, c.Message))), http.StatusConflict, "stale")
		rec := e.do(http.MethodGet, "/api/v1/users/"+user+"/payout-address", "")
		if got := decodeBody[payoutAddressJSON](t, rec); got.Address != w.addr {
			t.Fatalf("address changed to %s", got.Address)
		}
	})
	t.Run("failed attempts leave the challenge usable", func(t *testing.T) {
		c := e.challenge(t, user)
		wantError(t, e.link(user, linkBody(w.addr, c.Message, other.sign(t, c.Message))), http.StatusUnprocessableEntity)
		if rec := e.link(user, linkBody(w.addr, c.Message, w.sign(t, c.Message))); rec.Code != http.StatusOK {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	})

	c := e.challenge(t, user)
	good := w.sign(t, c.Message)
	badV := good[:len(good)-2] + "1d" // V = 29
	for _, tt := range []struct {
		name   string
		body   string
		status int
		parts  []string
	}{
		{"bad address checksum", linkBody(w.addr[:33]+flip(w.addr[33]), c.Message, good), 400, []string{`"address"`, "checksum"}},
		{"bad address length", linkBody("T123", c.Message, good), 400, []string{`"address"`, "34 base58 characters"}},
		{"hex address", linkBody("41"+strings.Repeat("0", 40), c.Message, good), 400, []string{`"address"`, "hex form", "starts with T"}},
		{"bad signature hex", linkBody(w.addr, c.Message, "0xzz"+good[4:]), 400, []string{`"signature"`, "not hexadecimal"}},
		{"short signature", linkBody(w.addr, c.Message, good[:130]), 400, []string{`"signature"`, "130 hex digits"}},
		{"empty signature", linkBody(w.addr, c.Message, ""), 400, []string{`"signature"`, "empty"}},
		{"bad V", linkBody(w.addr, c.Message, badV), 400, []string{`"signature"`, "V must be 0, 1, 27 or 28"}},
		{"empty message", linkBody(w.addr, "", good), 400, []string{`"message"`, "must not be empty"}},
		{"unknown field", `{"address":"` + w.addr + `","message":"m","signature":"` + good + `","sig":"x"}`, 400, []string{`unknown field "sig"`}},
		{"missing field", `{"address":"` + w.addr + `","message":"m"}`, 400, []string{`missing required field "signature"`}},
		{"wrong type", `{"address":1,"message":"m","signature":"` + good + `"}`, 400, []string{`"address"`, "must be a string"}},
		{"case variant key", `{"Address":"` + w.addr + `","message":"m","signature":"` + good + `"}`, 400, []string{`unknown field "Address"`}},
		{"bad JSON", `{"address":`, 400, []string{"malformed JSON"}},
		{"trailing data", linkBody(w.addr, c.Message, good) + "{}", 400, []string{"after the JSON object"}},
		{"empty body", ``, 400, []string{"request body is empty"}},
		{"too large", `{"address":"` + strings.Repeat("T", MaxBodyBytes) + `"}`, 413, []string{"larger than"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, e.link(user, tt.body), tt.status, tt.parts...)
		})
	}
	// None of the malformed requests used the challenge up.
	if rec := e.link(user, linkBody(w.addr, c.Message, good)); rec.Code != http.StatusOK {
		t.Fatalf("challenge unusable after malformed requests: %d %s", rec.Code, rec.Body)
	}
}

func flip(c byte) string {
	if c == 'R' {
		return "S"
	}
	return "R"
}

func TestPayoutAddressUnknownUserAndAuth(t *testing.T) {
	e, user := addressEnv(t)
	w := newTestWallet(t)
	c := e.challenge(t, user)
	body := linkBody(w.addr, c.Message, w.sign(t, c.Message))
	routes := []struct{ method, path, body string }{
		{http.MethodGet, "/payout-address/challenge", ""},
		{http.MethodGet, "/payout-address", ""},
		{http.MethodPut, "/payout-address", body},
	}
	for _, r := range routes {
		t.Run(r.method+r.path, func(t *testing.T) {
			wantError(t, e.do(r.method, "/api/v1/users/ffffffffffffffff"+r.path, r.body), http.StatusNotFound, "user not found")
			wantError(t, e.do(r.method, "/api/v1/users/bad%20id"+r.path, r.body), http.StatusNotFound, "user not found")
			wantError(t, e.doAuth(r.method, "/api/v1/users/"+user+r.path, r.body, ""), http.StatusUnauthorized, "missing bearer token")
			wantError(t, e.doAuth(r.method, "/api/v1/users/"+user+r.path, r.body, "Bearer wrong-token-wrong-token"), http.StatusUnauthorized, "invalid bearer token")
		})
	}
	// Nothing above linked or consumed anything.
	if rec := e.do(http.MethodPut, "/api/v1/users/"+user+"/payout-address", body); rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	// A challenge for an unknown user is not even stored.
	if n, _ := e.rdb.Exists(t.Context(), rewards.KeyAddressNonce("ffffffffffffffff")).Result(); n != 0 {
		t.Fatal("challenge stored for an unknown user")
	}
}

// TestPayoutAddressRoutesOptional: without Deps.Addresses the routes are not
// there (404 with the token, 401 without, like any unknown /api/ path).
func TestPayoutAddressRoutesOptional(t *testing.T) {
	e := newEnv(t, quiet())
	wantError(t, e.do(http.MethodGet, "/api/v1/users/abc/payout-address/challenge", ""), http.StatusNotFound)
	wantError(t, e.doAuth(http.MethodGet, "/api/v1/users/abc/payout-address", "", ""), http.StatusUnauthorized)
}

// FuzzLinkAddress drives the strict decoder of the PUT body: never a panic,
// errors are 400/413 and accepted bodies hold a valid address and a
// 65-byte signature.
func FuzzLinkAddress(f *testing.F) {
	w := newTestWallet(f)
	good := linkBody(w.addr, "seedpay payout address for user u\nnonce: 00\nexpires: 2026-01-01T00:00:00Z", w.sign(f, "x"))
	for _, s := range []string{good, `{}`, `[]`, `{"address":"T","message":"","signature":"0x"}`, good + good, `{"address":null,"message":1,"signature":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, aerr := decodeLinkAddress(bytes.NewReader(body))
		if aerr != nil {
			if aerr.status != http.StatusBadRequest && aerr.status != http.StatusRequestEntityTooLarge || aerr.msg == "" {
				t.Fatalf("error %d %q", aerr.status, aerr.msg)
			}
			return
		}
		if !chain.ValidAddress(req.Address) || len(req.Signature) != chain.SignatureLen || req.Message == "" {
			t.Fatalf("accepted %q as %+v", body, req)
		}
	})
}
