package rewards_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/seedpay/seedpay/chain"
	"github.com/seedpay/seedpay/internal/redistest"
	"github.com/seedpay/seedpay/rewards"
)

type wallet struct {
	key  *ecdsa.PrivateKey
	addr string
}

func newWallet(t *testing.T) wallet {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return wallet{k, chain.AddressOf(k)}
}

func (w wallet) sign(t *testing.T, msg string) []byte {
	t.Helper()
	sig, err := chain.SignMessage(w.key, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func newAddresses(t *testing.T) (*rewards.Addresses, *redistest.Server) {
	srv := redistest.Start(t)
	return rewards.NewAddresses(srv.Client(t), chain.TIP191{}), srv
}

var challengeRE = regexp.MustCompile(`\Aseedpay payout address for user (\S+)\nnonce: ([0-9a-f]{32})\nexpires: (\S+)\z`)

func TestAddressesChallengeFormat(t *testing.T) {
	a, srv := newAddresses(t)
	ctx := context.Background()
	before := time.Now()
	c, err := a.Challenge(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	m := challengeRE.FindStringSubmatch(c.Message)
	if m == nil {
		t.Fatalf("message %q does not have the documented format", c.Message)
	}
	if m[1] != "u1" || m[2] != c.Nonce {
		t.Fatalf("message names user %q nonce %q; want u1, %q", m[1], m[2], c.Nonce)
	}
	exp, err := time.Parse(time.RFC3339, m[3])
	if err != nil || !exp.Equal(c.ExpiresAt) || !strings.HasSuffix(m[3], "Z") {
		t.Fatalf("expires %q vs ExpiresAt %v: %v", m[3], c.ExpiresAt, err)
	}
	if d := c.ExpiresAt.Sub(before); d < rewards.ChallengeTTL-time.Second || d > rewards.ChallengeTTL+time.Second {
		t.Fatalf("expires in %v, want ~%v", d, rewards.ChallengeTTL)
	}
	if got := rewards.ChallengeMessage("u1", c.Nonce, c.ExpiresAt); got != c.Message {
		t.Fatalf("ChallengeMessage = %q, want %q", got, c.Message)
	}
	// Stored under the user's hash tag with a TTL of at most 10 minutes.
	rdb := srv.Client(t)
	if v, _ := rdb.Get(ctx, "sp:{u:u1}:addr_nonce").Result(); v != c.Message {
		t.Fatalf("stored challenge %q", v)
	}
	ttl, _ := rdb.PTTL(ctx, rewards.KeyAddressNonce("u1")).Result()
	if ttl <= rewards.ChallengeTTL-2*time.Second || ttl > rewards.ChallengeTTL {
		t.Fatalf("challenge TTL %v", ttl)
	}
	// Nonces are fresh.
	seen := map[string]bool{c.Nonce: true}
	for range 20 {
		c2, err := a.Challenge(ctx, "u1")
		if err != nil {
			t.Fatal(err)
		}
		if seen[c2.Nonce] {
			t.Fatalf("nonce %s repeated", c2.Nonce)
		}
		seen[c2.Nonce] = true
	}
	for _, bad := range []string{"", "a b", "a{b", "x}", "a\nb", strings.Repeat("a", 65)} {
		if _, err := a.Challenge(ctx, bad); !errors.Is(err, rewards.ErrBadUser) {
			t.Errorf("Challenge(%q) err = %v, want ErrBadUser", bad, err)
		}
	}
}

func TestAddressesLink(t *testing.T) {
	a, srv := newAddresses(t)
	ctx := context.Background()
	w := newWallet(t)
	if got, err := a.PayoutAddress(ctx, "u1"); err != nil || got != "" {
		t.Fatalf("before linking: %q, %v", got, err)
	}
	c, err := a.Challenge(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Link(ctx, "u1", w.addr, c.Message, w.sign(t, c.Message)); err != nil {
		t.Fatalf("link: %v", err)
	}
	if got, err := a.PayoutAddress(ctx, "u1"); err != nil || got != w.addr {
		t.Fatalf("PayoutAddress = %q, %v; want %s", got, err, w.addr)
	}
	if n, _ := srv.Client(t).Exists(ctx, rewards.KeyAddressNonce("u1")).Result(); n != 0 {
		t.Fatal("challenge not deleted after use")
	}
	// The same challenge again: used up.
	err = a.Link(ctx, "u1", w.addr, c.Message, w.sign(t, c.Message))
	if !errors.Is(err, rewards.ErrStaleChallenge) {
		t.Fatalf("reused challenge: %v", err)
	}
	// Another user is unaffected.
	if got, _ := a.PayoutAddress(ctx, "u2"); got != "" {
		t.Fatalf("u2 has %q", got)
	}
	// Relinking to another address with a new challenge replaces it.
	w2 := newWallet(t)
	c2, _ := a.Challenge(ctx, "u1")
	if err := a.Link(ctx, "u1", w2.addr, c2.Message, w2.sign(t, c2.Message)); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.PayoutAddress(ctx, "u1"); got != w2.addr {
		t.Fatalf("after relink %q, want %s", got, w2.addr)
	}
	// Signatures with V 0/1 (go-ethereum / gotron-sdk keystore style) work.
	c3, _ := a.Challenge(ctx, "u1")
	sig := w.sign(t, c3.Message)
	sig[64] -= 27
	if err := a.Link(ctx, "u1", w.addr, c3.Message, sig); err != nil {
		t.Fatalf("V 0/1: %v", err)
	}
}

func TestAddressesLinkRefusals(t *testing.T) {
	a, srv := newAddresses(t)
	ctx := context.Background()
	w, other := newWallet(t), newWallet(t)

	t.Run("no challenge", func(t *testing.T) {
		msg := rewards.ChallengeMessage("nobody", strings.Repeat("0", 32), time.Now().Add(time.Minute))
		err := a.Link(ctx, "nobody", w.addr, msg, w.sign(t, msg))
		if !errors.Is(err, rewards.ErrStaleChallenge) || !strings.Contains(err.Error(), "no open challenge") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("old nonce after a new challenge", func(t *testing.T) {
		old, _ := a.Challenge(ctx, "u1")
		if _, err := a.Challenge(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		err := a.Link(ctx, "u1", w.addr, old.Message, w.sign(t, old.Message))
		if !errors.Is(err, rewards.ErrStaleChallenge) || !strings.Contains(err.Error(), "not user u1's current challenge") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("tampered message", func(t *testing.T) {
		c, _ := a.Challenge(ctx, "u1")
		sig := w.sign(t, c.Message)
		tampered := strings.Replace(c.Message, "user u1", "user u2", 1)
		if err := a.Link(ctx, "u1", w.addr, tampered, sig); !errors.Is(err, rewards.ErrStaleChallenge) {
			t.Fatalf("altered message: %v", err)
		}
		// The right message, but the signature is over another text.
		sig = w.sign(t, c.Message+" ")
		err := a.Link(ctx, "u1", w.addr, c.Message, sig)
		if !errors.Is(err, rewards.ErrBadSignature) || !errors.Is(err, chain.ErrWrongSigner) {
			t.Fatalf("signature over another message: %v", err)
		}
	})
	t.Run("another address's signature", func(t *testing.T) {
		c, _ := a.Challenge(ctx, "u1")
		err := a.Link(ctx, "u1", w.addr, c.Message, other.sign(t, c.Message))
		if !errors.Is(err, rewards.ErrBadSignature) || !errors.Is(err, chain.ErrWrongSigner) ||
			!strings.Contains(err.Error(), "is by "+other.addr+", not "+w.addr) {
			t.Fatalf("err = %v", err)
		}
		// A refused signature does not use up the challenge.
		if err := a.Link(ctx, "u1", w.addr, c.Message, w.sign(t, c.Message)); err != nil {
			t.Fatalf("challenge consumed by a failed attempt: %v", err)
		}
	})
	t.Run("bad address", func(t *testing.T) {
		c, _ := a.Challenge(ctx, "u1")
		err := a.Link(ctx, "u1", "T"+w.addr[2:]+"1", c.Message, w.sign(t, c.Message))
		if !errors.Is(err, rewards.ErrBadAddress) || !errors.Is(err, chain.ErrBadAddress) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("malformed signature", func(t *testing.T) {
		c, _ := a.Challenge(ctx, "u1")
		sig := w.sign(t, c.Message)
		for _, bad := range [][]byte{sig[:64], append(append([]byte{}, sig[:64]...), 5), nil} {
			err := a.Link(ctx, "u1", w.addr, c.Message, bad)
			if !errors.Is(err, rewards.ErrBadSignature) || errors.Is(err, chain.ErrWrongSigner) {
				t.Fatalf("err = %v", err)
			}
		}
	})
	t.Run("expired", func(t *testing.T) {
		c, _ := a.Challenge(ctx, "u3")
		// Redis's TTL is the clock: make it run out.
		srv.Client(t).PExpire(ctx, rewards.KeyAddressNonce("u3"), time.Millisecond)
		time.Sleep(20 * time.Millisecond)
		err := a.Link(ctx, "u3", w.addr, c.Message, w.sign(t, c.Message))
		if !errors.Is(err, rewards.ErrStaleChallenge) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("bad user", func(t *testing.T) {
		if err := a.Link(ctx, "", w.addr, "x", nil); !errors.Is(err, rewards.ErrBadUser) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestAddressesLinkRace: one challenge, many concurrent Links with valid
// signatures by different addresses: exactly one wins.
func TestAddressesLinkRace(t *testing.T) {
	a, _ := newAddresses(t)
	ctx := context.Background()
	c, err := a.Challenge(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  []string
		errs = make([]error, n)
	)
	for i := range n {
		w := newWallet(t)
		sig := w.sign(t, c.Message)
		wg.Go(func() {
			errs[i] = a.Link(ctx, "u1", w.addr, c.Message, sig)
			if errs[i] == nil {
				mu.Lock()
				won = append(won, w.addr)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d links succeeded with one challenge", len(won))
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, rewards.ErrStaleChallenge) {
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if got, _ := a.PayoutAddress(ctx, "u1"); got != won[0] {
		t.Fatalf("stored %s, winner %s", got, won[0])
	}
}
