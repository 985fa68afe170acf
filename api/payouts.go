package api

import (
	"errors"
	"net/http"
	"slices"

	"go.uber.org/zap"

	"github.com/seedpay/seedpay/rewards"
)

func (s *Server) routePayouts(m *http.ServeMux) {
	m.Handle("GET /api/v1/payouts", s.admin(s.listPayouts))
	m.Handle("GET /api/v1/users/{id}/payouts", s.admin(s.userPayouts))
	m.Handle("POST /api/v1/payouts/{id}/retry", s.admin(s.retryPayout))
}

type payoutPage struct {
	Payouts []rewards.Payout `json:"payouts"`
}

func (s *Server) listPayouts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = rewards.PayoutPending
	}
	if !slices.Contains(rewards.PayoutStates, state) {
		writeError(w, http.StatusBadRequest, "state: want one of pending, signed, broadcast, confirmed, failed, got "+quoteInput(state))
		return
	}
	limit, aerr := intParam("limit", q.Get("limit"), 50, 1, 1000)
	if aerr != nil {
		writeError(w, aerr.status, aerr.msg)
		return
	}
	list, err := s.payer.List(r.Context(), state, "", limit)
	if err != nil {
		s.internalError(w, r, "list payouts", err)
		return
	}
	writeJSON(w, http.StatusOK, payoutPage{Payouts: nonNil(list)})
}

func (s *Server) userPayouts(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validUserID(id) {
		writeError(w, http.StatusNotFound, "user not found")
		return
	}
	if _, err := s.store.User(r.Context(), id); err != nil {
		s.userError(w, r, "user payouts", id, err)
		return
	}
	list, err := s.payer.List(r.Context(), "", id, 100)
	if err != nil {
		s.internalError(w, r, "user payouts", err, zap.String("user_id", id))
		return
	}
	writeJSON(w, http.StatusOK, payoutPage{Payouts: nonNil(list)})
}

func (s *Server) retryPayout(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validUserID(id) {
		writeError(w, http.StatusNotFound, "payout not found")
		return
	}
	po, err := s.payer.Retry(r.Context(), id)
	switch {
	case errors.Is(err, rewards.ErrPayoutNotFound):
		writeError(w, http.StatusNotFound, "payout not found")
		return
	case po == nil && err != nil:
		s.internalError(w, r, "retry payout", err, zap.String("payout", id))
		return
	}
	s.log.Info("payout retried", zap.String("action", "payout.retry"), zap.String("payout", id), zap.String("state", po.State))
	// A chain error is not an API error: the payout waits, its reason says why.
	writeJSON(w, http.StatusOK, po)
}

func nonNil(l []rewards.Payout) []rewards.Payout {
	if l == nil {
		return []rewards.Payout{}
	}
	return l
}
