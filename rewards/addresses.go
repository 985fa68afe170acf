package rewards

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Payout addresses are linked by proof of ownership: the API hands out a
// one-time challenge message naming the user and a random nonce, the user
// signs it with the TRON address's key (TIP-191, e.g. TronLink or TronWeb's
// signMessageV2), and Link checks the signature before storing the address.

// ChallengeTTL is how long a challenge can be answered.
const ChallengeTTL = 10 * time.Minute

// challengeNonceBytes is the nonce's size before hex encoding.
const challengeNonceBytes = 16

// Errors from Link; returned errors wrap one of them (%w) and say more.
var (
	// ErrBadAddress: not a valid TRON address.
	ErrBadAddress = errors.New("invalid payout address")
	// ErrBadSignature: the signature is malformed or was not made by the
	// address's key over the challenge. The verifier's error is wrapped
	// too (e.g. chain.ErrWrongSigner).
	ErrBadSignature = errors.New("invalid payout address signature")
	// ErrStaleChallenge: the message is not the user's current challenge
	// (none issued, expired, already used, or replaced by a newer one).
	ErrStaleChallenge = errors.New("stale payout address challenge")
	// ErrBadUser: the user id cannot be used in a key.
	ErrBadUser = errors.New("invalid user id")
)

// KeyAddress is a user's linked payout address (base58 T...).
func KeyAddress(user string) string { return "sp:{u:" + user + "}:addr" }

// KeyAddressNonce is a user's open challenge: the exact message to sign,
// expiring after ChallengeTTL.
func KeyAddressNonce(user string) string { return "sp:{u:" + user + "}:addr_nonce" }

// Verifier checks TRON addresses and TIP-191 signatures. chain.TIP191
// implements it; rewards takes it as an interface because it never imports
// chain (chain depends on rewards, not the other way round).
type Verifier interface {
	// CheckAddress returns nil for a valid base58 TRON address.
	CheckAddress(address string) error
	// VerifyMessage returns nil if sig is a TIP-191 signature of msg by
	// the key of address.
	VerifyMessage(address string, msg, sig []byte) error
}

// Challenge is a message for a user to sign with their payout address.
type Challenge struct {
	Message   string    `json:"message"`
	Nonce     string    `json:"nonce"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Addresses stores payout addresses proven by signature. It implements
// AddressBook for the settler and the payer.
type Addresses struct {
	rdb    redis.UniversalClient
	verify Verifier
	now    func() time.Time
}

// NewAddresses returns the payout address book on rdb. v checks addresses
// and signatures: pass chain.TIP191{}.
func NewAddresses(rdb redis.UniversalClient, v Verifier) *Addresses {
	return &Addresses{rdb: rdb, verify: v, now: time.Now}
}

// ChallengeMessage is the text a user signs to link a payout address:
//
//	seedpay payout address for user <id>
//	nonce: <32 lowercase hex digits>
//	expires: <RFC 3339 UTC, seconds>
//
// (lines joined by "\n", no trailing newline).
func ChallengeMessage(user, nonce string, expires time.Time) string {
	return "seedpay payout address for user " + user +
		"\nnonce: " + nonce +
		"\nexpires: " + expires.UTC().Format(time.RFC3339)
}

// checkUser keeps ids that would break the key's hash tag or the message's
// line structure out.
func checkUser(user string) error {
	if user == "" || len(user) > 64 {
		return fmt.Errorf("%w: must be 1..64 characters", ErrBadUser)
	}
	for i := 0; i < len(user); i++ {
		if c := user[i]; c <= ' ' || c > '~' || c == '{' || c == '}' {
			return fmt.Errorf("%w: character %d is not allowed", ErrBadUser, i+1)
		}
	}
	return nil
}

// Challenge issues a fresh challenge for user, valid for ChallengeTTL. It
// replaces any earlier one: only the newest challenge can be answered.
func (a *Addresses) Challenge(ctx context.Context, user string) (Challenge, error) {
	if err := checkUser(user); err != nil {
		return Challenge{}, err
	}
	var b [challengeNonceBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Challenge{}, fmt.Errorf("payout challenge nonce: %w", err)
	}
	nonce := hex.EncodeToString(b[:])
	// Whole seconds, so the message's expiry is exact; Redis's TTL ends
	// then (0..1 s short of ChallengeTTL).
	now := a.now()
	exp := now.Add(ChallengeTTL).Truncate(time.Second)
	c := Challenge{Message: ChallengeMessage(user, nonce, exp), Nonce: nonce, ExpiresAt: exp.UTC()}
	ttl := exp.Sub(now)
	if err := a.rdb.Set(ctx, KeyAddressNonce(user), c.Message, ttl).Err(); err != nil {
		return Challenge{}, fmt.Errorf("store payout challenge: %w", err)
	}
	return c, nil
}

// linkScript stores the address and consumes the challenge in one step, if
// the challenge is still the one that was signed: a challenge answers at
// most one Link, even when two race.
var linkScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[1])
return 1
`)

// Link sets user's payout address to address, given the signature sig of
// message by that address. message must be the user's current challenge,
// byte for byte. On success the challenge is used up. Errors wrap
// ErrStaleChallenge, ErrBadAddress or ErrBadSignature (checked in that
// order).
func (a *Addresses) Link(ctx context.Context, user, address, message string, sig []byte) error {
	if err := checkUser(user); err != nil {
		return err
	}
	cur, err := a.rdb.Get(ctx, KeyAddressNonce(user)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return fmt.Errorf("%w: no open challenge for user %s (expired, already used, or never issued); ask for a new one", ErrStaleChallenge, user)
	case err != nil:
		return fmt.Errorf("read payout challenge: %w", err)
	case message != cur:
		return fmt.Errorf("%w: the message is not user %s's current challenge (an older or altered one); sign the newest challenge exactly", ErrStaleChallenge, user)
	}
	if err := a.verify.CheckAddress(address); err != nil {
		return fmt.Errorf("%w: %w", ErrBadAddress, err)
	}
	if err := a.verify.VerifyMessage(address, []byte(message), sig); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	ok, err := linkScript.Run(ctx, a.rdb, []string{KeyAddressNonce(user), KeyAddress(user)}, message, address).Int()
	if err != nil {
		return fmt.Errorf("store payout address: %w", err)
	}
	if ok != 1 {
		return fmt.Errorf("%w: the challenge was used or replaced while this link was checked", ErrStaleChallenge)
	}
	return nil
}

// PayoutAddress returns user's linked payout address, or "" when none is.
func (a *Addresses) PayoutAddress(ctx context.Context, user string) (string, error) {
	if err := checkUser(user); err != nil {
		return "", err
	}
	addr, err := a.rdb.Get(ctx, KeyAddress(user)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read payout address: %w", err)
	}
	return addr, nil
}

var _ AddressBook = (*Addresses)(nil)
