package api

import (
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/seedpay/seedpay/rewards"
)

func (s *Server) routeReceipts(m *http.ServeMux, keys *rewards.ReceiptKeys) {
	m.Handle("POST /api/v1/users/{id}/keys", s.admin(func(w http.ResponseWriter, r *http.Request) { s.addReceiptKey(w, r, keys) }))
	m.Handle("GET /api/v1/users/{id}/keys", s.admin(func(w http.ResponseWriter, r *http.Request) { s.listReceiptKeys(w, r, keys) }))
	m.Handle("GET /api/v1/receipts/stats", s.admin(s.receiptStats))
}

func (s *Server) addReceiptKey(w http.ResponseWriter, r *http.Request, keys *rewards.ReceiptKeys) {
	id := r.PathValue("id")
	if !validUserID(id) {
		writeError(w, http.StatusNotFound, "user not found")
		return
	}
	if _, err := s.store.User(r.Context(), id); err != nil {
		s.userError(w, r, "add receipt key", id, err)
		return
	}
	obj, aerr := readObject(http.MaxBytesReader(w, r.Body, MaxBodyBytes), []string{"key"})
	if aerr != nil {
		writeError(w, aerr.status, aerr.msg)
		return
	}
	str, aerr := stringField(obj, "key")
	if aerr != nil {
		writeError(w, aerr.status, aerr.msg)
		return
	}
	raw, err := hex.DecodeString(str)
	if err != nil || len(raw) != 32 {
		writeError(w, http.StatusBadRequest, "key: want 64 hex digits (an ed25519 public key), got "+quoteInput(str))
		return
	}
	var pub [32]byte
	copy(pub[:], raw)
	if err := keys.Register(r.Context(), id, pub); err != nil {
		if errors.Is(err, rewards.ErrKeyTaken) {
			writeError(w, http.StatusConflict, "key: registered to another user")
			return
		}
		s.internalError(w, r, "add receipt key", err, zap.String("user_id", id))
		return
	}
	s.log.Info("receipt key registered", zap.String("action", "user.add_key"), zap.String("user_id", id), zap.String("key", hex.EncodeToString(pub[:])))
	writeJSON(w, http.StatusCreated, map[string]string{"user": id, "key": hex.EncodeToString(pub[:])})
}

func (s *Server) listReceiptKeys(w http.ResponseWriter, r *http.Request, keys *rewards.ReceiptKeys) {
	id := r.PathValue("id")
	if !validUserID(id) {
		writeError(w, http.StatusNotFound, "user not found")
		return
	}
	if _, err := s.store.User(r.Context(), id); err != nil {
		s.userError(w, r, "list receipt keys", id, err)
		return
	}
	list, err := keys.UserKeys(r.Context(), id)
	if err != nil {
		s.internalError(w, r, "list receipt keys", err, zap.String("user_id", id))
		return
	}
	if list == nil {
		list = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": id, "keys": list})
}

// receiptStats reports receipts by outcome since the ledger began, over all
// tracker instances: {"accepted":N,"credited_bytes":N,"rejected":{"reason":N}}.
func (s *Server) receiptStats(w http.ResponseWriter, r *http.Request) {
	m, err := s.store.Redis().HGetAll(r.Context(), rewards.KeyReceiptStats).Result()
	if err != nil {
		s.internalError(w, r, "receipt stats", err)
		return
	}
	out := struct {
		Accepted      int64            `json:"accepted"`
		CreditedBytes int64            `json:"credited_bytes"`
		Rejected      map[string]int64 `json:"rejected"`
	}{Rejected: map[string]int64{}}
	for k, v := range m {
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "accepted":
			out.Accepted = n
		case "credited_bytes":
			out.CreditedBytes = n
		default:
			out.Rejected[k] = n
		}
	}
	writeJSON(w, http.StatusOK, out)
}
