package receipts

import (
	"crypto/ed25519"
	"errors"
	"testing"
)

func TestSignRegistration(t *testing.T) {
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	pub, sig, err := SignRegistration(key, "passkey-a")
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(pub[:], RegistrationMessage(pub, "passkey-a"), sig) {
		t.Fatal("registration signature does not verify")
	}
	if ed25519.Verify(pub[:], RegistrationMessage(pub, "passkey-b"), sig) {
		t.Fatal("a registration for one passkey verifies for another")
	}
	if _, _, err := SignRegistration(key[:10], "p"); !errors.Is(err, ErrKey) {
		t.Fatalf("short key: %v, want ErrKey", err)
	}
}
