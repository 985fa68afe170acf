package api

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"go.uber.org/zap"

	"github.com/seedpay/seedpay/rewards"
)

// Epoch listing bounds.
const (
	defaultEpochPage = 20
	maxEpochPage     = 100
)

func (s *Server) routeRewards(m *http.ServeMux) {
	m.Handle("GET /api/v1/epochs", s.admin(s.listEpochs))
	m.Handle("GET /api/v1/epochs/{n}", s.admin(s.getEpoch))
	m.Handle("GET /api/v1/epochs/{n}/proof/{user}", s.admin(s.getProof))
	m.Handle("GET /api/v1/users/{id}/rewards", s.admin(s.getUserRewards))
}

// intParam parses an optional query or path integer, naming it on error.
func intParam(name, raw string, def, lo, hi int64) (int64, *apiError) {
	if raw == "" {
		return def, nil
	}
	v, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, badRequest("%s: want an integer %d..%d, got %s", name, lo, hi, quoteInput(raw))
	}
	return v, nil
}

// pageParams reads limit (default def, 1..max) and the page position: offset
// (0..2^31) or, with before, an epoch (0: from the newest), or answers 400.
func pageParams(w http.ResponseWriter, q url.Values, def, max int64, before bool) (limit, pos int64, ok bool) {
	limit, aerr := intParam("limit", q.Get("limit"), def, 1, max)
	if aerr == nil && before {
		pos, aerr = intParam("before", q.Get("before"), 0, 1, 1<<40)
	} else if aerr == nil {
		pos, aerr = intParam("offset", q.Get("offset"), 0, 0, 1<<31)
	}
	if aerr != nil {
		writeError(w, aerr.status, aerr.msg)
		return 0, 0, false
	}
	return limit, pos, true
}

func (s *Server) listEpochs(w http.ResponseWriter, r *http.Request) {
	limit, before, ok := pageParams(w, r.URL.Query(), defaultEpochPage, maxEpochPage, true)
	if !ok {
		return
	}
	list, err := s.ledger.Epochs(r.Context(), before, int(limit))
	if err != nil {
		s.internalError(w, r, "list epochs", err)
		return
	}
	page := struct {
		Epochs []rewards.EpochView `json:"epochs"`
		Next   string              `json:"next,omitempty"` // query for the next (older) page
	}{Epochs: list}
	if page.Epochs == nil {
		page.Epochs = []rewards.EpochView{}
	}
	if n := len(list); n == int(limit) && list[n-1].Epoch > 0 {
		page.Next = "?before=" + strconv.FormatInt(list[n-1].Epoch, 10) + "&limit=" + strconv.FormatInt(limit, 10)
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) epochParam(w http.ResponseWriter, r *http.Request) (int64, bool) {
	n, aerr := intParam("epoch", r.PathValue("n"), 0, 0, 1<<40)
	if aerr != nil {
		writeError(w, aerr.status, aerr.msg)
		return 0, false
	}
	return n, true
}

func (s *Server) getEpoch(w http.ResponseWriter, r *http.Request) {
	n, ok := s.epochParam(w, r)
	if !ok {
		return
	}
	v, err := s.ledger.Epoch(r.Context(), n, true)
	if errors.Is(err, rewards.ErrNotSealed) {
		writeError(w, http.StatusNotFound, "epoch "+strconv.FormatInt(n, 10)+" has not started")
		return
	}
	if err != nil {
		s.internalError(w, r, "get epoch", err, zap.Int64("epoch", n))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) getProof(w http.ResponseWriter, r *http.Request) {
	n, ok := s.epochParam(w, r)
	if !ok {
		return
	}
	user := r.PathValue("user")
	if !validUserID(user) {
		writeError(w, http.StatusNotFound, "user not found")
		return
	}
	p, err := s.ledger.Proof(r.Context(), n, user)
	switch {
	case errors.Is(err, rewards.ErrNotSealed):
		writeError(w, http.StatusNotFound, "epoch "+strconv.FormatInt(n, 10)+" is not sealed yet")
	case errors.Is(err, rewards.ErrNoUser):
		writeError(w, http.StatusNotFound, "user has no line in epoch "+strconv.FormatInt(n, 10))
	case err != nil:
		s.internalError(w, r, "get proof", err, zap.Int64("epoch", n), zap.String("user_id", user))
	default:
		writeJSON(w, http.StatusOK, p)
	}
}

func (s *Server) getUserRewards(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validUserID(id) {
		writeError(w, http.StatusNotFound, "user not found")
		return
	}
	if _, err := s.store.User(r.Context(), id); err != nil {
		s.userError(w, r, "user rewards", id, err)
		return
	}
	ur, err := s.ledger.UserRewards(r.Context(), id)
	if err != nil {
		s.internalError(w, r, "user rewards", err, zap.String("user_id", id))
		return
	}
	if ur.Epochs == nil {
		ur.Epochs = []rewards.UserEpoch{}
	}
	writeJSON(w, http.StatusOK, ur)
}
