package api

import (
	"errors"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/seedpay/seedpay/chain"
	"github.com/seedpay/seedpay/rewards"
)

// Payout address linking. The operator's site fetches a challenge for a
// user, has the user sign it with their TRON wallet (TIP-191: TronLink,
// TronWeb's signMessageV2), and PUTs the address, the message and the
// signature back. Like every /api/v1 route these are admin routes.
//
//	GET /api/v1/users/{id}/payout-address/challenge -> {"message","nonce","expires_at"}
//	PUT /api/v1/users/{id}/payout-address {"address","message","signature"} -> {"user","address"}
//	GET /api/v1/users/{id}/payout-address -> {"user","address"} ("" when none)

func (s *Server) routeAddresses(m *http.ServeMux, book *rewards.Addresses) {
	h := &addressRoutes{s: s, book: book}
	m.Handle("GET /api/v1/users/{id}/payout-address/challenge", s.admin(h.challenge))
	m.Handle("GET /api/v1/users/{id}/payout-address", s.admin(h.get))
	m.Handle("PUT /api/v1/users/{id}/payout-address", s.admin(h.link))
}

type addressRoutes struct {
	s    *Server
	book *rewards.Addresses
}

type challengeJSON struct {
	Message   string `json:"message"`
	Nonce     string `json:"nonce"`
	ExpiresAt string `json:"expires_at"` // RFC 3339, UTC, as in the message
}

type payoutAddressJSON struct {
	User    string `json:"user"`
	Address string `json:"address"` // "" when none is linked
}

type linkAddressRequest struct {
	Address   string
	Message   string
	Signature []byte
}

// decodeLinkAddress reads and validates the body of PUT
// /api/v1/users/{id}/payout-address: exactly the fields address (base58
// T...), message (the challenge, verbatim) and signature (65 bytes hex,
// 0x optional). Errors name the field.
func decodeLinkAddress(r io.Reader) (linkAddressRequest, *apiError) {
	obj, aerr := readObject(r, []string{"address", "message", "signature"})
	if aerr != nil {
		return linkAddressRequest{}, aerr
	}
	var req linkAddressRequest
	if req.Address, aerr = stringField(obj, "address"); aerr != nil {
		return req, aerr
	}
	if req.Message, aerr = stringField(obj, "message"); aerr != nil {
		return req, aerr
	}
	sigHex, aerr := stringField(obj, "signature")
	if aerr != nil {
		return req, aerr
	}
	if _, err := chain.ParseAddress(req.Address); err != nil {
		return req, badRequest("invalid field %q: %s: %v", "address", quoteInput(req.Address), err)
	}
	if req.Message == "" {
		return req, badRequest("invalid field %q: must not be empty (sign the challenge from GET .../payout-address/challenge)", "message")
	}
	sig, err := chain.ParseSignature(sigHex)
	if err != nil {
		// The signature is not echoed: it is not secret, but it is noise.
		return req, badRequest("invalid field %q: %v", "signature", err)
	}
	req.Signature = sig
	return req, nil
}

// user checks the path's user id and that the user exists; it answers 404
// or 500 itself and returns false then.
func (h *addressRoutes) user(w http.ResponseWriter, r *http.Request, op string) (string, bool) {
	id := r.PathValue("id")
	if !validUserID(id) {
		writeError(w, http.StatusNotFound, "user not found")
		return "", false
	}
	if _, err := h.s.store.User(r.Context(), id); err != nil {
		h.s.userError(w, r, op, id, err)
		return "", false
	}
	return id, true
}

func (h *addressRoutes) challenge(w http.ResponseWriter, r *http.Request) {
	id, ok := h.user(w, r, "payout address challenge")
	if !ok {
		return
	}
	c, err := h.book.Challenge(r.Context(), id)
	if err != nil {
		h.s.internalError(w, r, "payout address challenge", err, zap.String("user_id", id))
		return
	}
	h.s.log.Info("payout address challenge issued", zap.String("action", "user.payout_address.challenge"),
		zap.String("user_id", id), zap.Time("expires_at", c.ExpiresAt))
	writeJSON(w, http.StatusOK, challengeJSON{Message: c.Message, Nonce: c.Nonce, ExpiresAt: c.ExpiresAt.UTC().Format(time.RFC3339)})
}

func (h *addressRoutes) get(w http.ResponseWriter, r *http.Request) {
	id, ok := h.user(w, r, "get payout address")
	if !ok {
		return
	}
	addr, err := h.book.PayoutAddress(r.Context(), id)
	if err != nil {
		h.s.internalError(w, r, "get payout address", err, zap.String("user_id", id))
		return
	}
	writeJSON(w, http.StatusOK, payoutAddressJSON{User: id, Address: addr})
}

func (h *addressRoutes) link(w http.ResponseWriter, r *http.Request) {
	id, ok := h.user(w, r, "link payout address")
	if !ok {
		return
	}
	req, aerr := decodeLinkAddress(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if aerr != nil {
		writeError(w, aerr.status, aerr.msg)
		return
	}
	err := h.book.Link(r.Context(), id, req.Address, req.Message, req.Signature)
	if err != nil {
		status, msg := linkErrorStatus(err)
		if status == http.StatusInternalServerError {
			h.s.internalError(w, r, "link payout address", err, zap.String("user_id", id))
			return
		}
		// Never the signature or the message: ids, the (valid) address and
		// the reason only.
		h.s.log.Warn("payout address link refused", zap.String("action", "user.payout_address.link"),
			zap.String("user_id", id), zap.String("address", req.Address), zap.Int("status", status), zap.String("reason", msg))
		writeError(w, status, msg)
		return
	}
	h.s.log.Info("payout address linked", zap.String("action", "user.payout_address.link"),
		zap.String("user_id", id), zap.String("address", req.Address))
	writeJSON(w, http.StatusOK, payoutAddressJSON{User: id, Address: req.Address})
}

// linkErrorStatus maps a Link error to the client's status and message:
// 409 for a stale, used or replaced challenge (fetch a new one), 422 for a
// well-formed signature by another key (the body is syntactically fine but
// does not prove the address), 400 for a malformed signature or address.
func linkErrorStatus(err error) (int, string) {
	switch {
	case errors.Is(err, rewards.ErrStaleChallenge):
		return http.StatusConflict, err.Error()
	case errors.Is(err, chain.ErrWrongSigner):
		return http.StatusUnprocessableEntity, "invalid field \"signature\": not made by the address's key over this message: " + err.Error()
	case errors.Is(err, rewards.ErrBadSignature):
		return http.StatusBadRequest, "invalid field \"signature\": " + err.Error()
	case errors.Is(err, rewards.ErrBadAddress):
		return http.StatusBadRequest, "invalid field \"address\": " + err.Error()
	case errors.Is(err, rewards.ErrBadUser):
		return http.StatusNotFound, "user not found"
	default:
		return http.StatusInternalServerError, "internal error"
	}
}
