package receipts

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"go.uber.org/zap"

	"github.com/seedpay/seedpay/receipts"
	"github.com/seedpay/seedpay/rewards"
)

// KeyRegistration serves POST /keys/{passkey}: a client registers its
// receipt key for the account behind the passkey, proving it holds the
// private half by signing receipts.RegistrationMessage(key, passkey).
type KeyRegistration struct {
	lookup Lookup
	keys   *rewards.ReceiptKeys
	log    *zap.Logger
}

// NewKeyRegistration returns the self-service key handler.
func NewKeyRegistration(lookup Lookup, keys *rewards.ReceiptKeys, log *zap.Logger) *KeyRegistration {
	return &KeyRegistration{lookup: lookup, keys: keys, log: log}
}

type keyRequest struct {
	Key       string `json:"key"`       // 64 hex: ed25519 public key
	Signature string `json:"signature"` // 128 hex: over RegistrationMessage
}

func (k *KeyRegistration) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	passkey := r.PathValue("passkey")
	u, ok := k.lookup.UserByPasskey(passkey)
	if !ok || u.Banned {
		writeError(w, http.StatusForbidden, "unknown passkey or account disabled")
		return
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	dec.DisallowUnknownFields()
	var req keyRequest
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "body: want {\"key\":\"<64 hex>\",\"signature\":\"<128 hex>\"}: "+err.Error())
		return
	}
	pub, err := hex.DecodeString(req.Key)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		writeError(w, http.StatusBadRequest, "key: want 64 hex digits (an ed25519 public key)")
		return
	}
	sig, err := hex.DecodeString(req.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		writeError(w, http.StatusBadRequest, "signature: want 128 hex digits")
		return
	}
	var key [32]byte
	copy(key[:], pub)
	if err := receipts.CheckPublicKey(key[:]); err != nil {
		writeError(w, http.StatusBadRequest, "key: "+err.Error())
		return
	}
	if !ed25519.Verify(pub, receipts.RegistrationMessage(key, passkey), sig) {
		writeError(w, http.StatusUnprocessableEntity, "signature: not made by this key over the registration message")
		return
	}
	if err := k.keys.Register(r.Context(), u.ID, key); err != nil {
		if errors.Is(err, rewards.ErrKeyTaken) {
			writeError(w, http.StatusConflict, "key: registered to another account")
			return
		}
		k.log.Error("register receipt key", zap.String("user_id", u.ID), zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, "ledger unavailable, try again")
		return
	}
	k.log.Info("receipt key registered", zap.String("user_id", u.ID), zap.String("key", req.Key))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"user": u.ID, "key": req.Key})
}
