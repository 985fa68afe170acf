package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/seedpay/seedpay/chain"
	"github.com/seedpay/seedpay/middleware/registry"
	"github.com/seedpay/seedpay/rewards"
)

// Content-owner pools and torrent bounties (admin routes):
//
//	POST   /api/v1/pools                          {"name","owner","refund_address","torrents":[hex...],"budget_per_epoch":"<base units>"} -> 201 pool
//	GET    /api/v1/pools                          -> {"pools":[...]} (the global pool first)
//	GET    /api/v1/pools/{id}                     -> pool: funded, spent, refunded, remaining, epoch_spend, torrent_spend
//	POST   /api/v1/pools/{id}/torrents            {"torrents":[hex...]} -> pool (added)
//	DELETE /api/v1/pools/{id}/torrents/{info_hash} -> pool (removed)
//	POST   /api/v1/pools/{id}/close               -> 202 pool (closing: the settler refunds within seconds)
//	GET    /api/v1/pools/{id}/deposits            -> {"deposits":[...]}
//	GET    /api/v1/deposits?unclaimed=1           -> {"deposits":[...]} transfers to deposit addresses without a pool
//	POST   /api/v1/deposits/rescan                {"from_block":N} -> {"previous","cursor"}: the watcher reads from N again (back only; idempotent)
//	POST   /api/v1/torrents/{info_hash}/bounty    {"refund_address","budget_per_epoch"} -> 201 new pool | 200 the open one with "existing":true
//	                                              (body optional then; a body given is not applied, and "note" says so)
//
// A bounty pool's torrents cannot be changed (409); an edit that keeps
// losing to concurrent deposits or settlement is a 409 too.
//
// The deposit key never leaves the keystore: only its address is shown.

func (s *Server) routePools(m *http.ServeMux, pools *rewards.Pools) {
	h := &poolRoutes{s: s, pools: pools}
	m.Handle("POST /api/v1/pools", s.admin(h.create))
	m.Handle("GET /api/v1/pools", s.admin(h.list))
	m.Handle("GET /api/v1/pools/{id}", s.admin(h.get))
	m.Handle("POST /api/v1/pools/{id}/torrents", s.admin(h.addTorrents))
	m.Handle("DELETE /api/v1/pools/{id}/torrents/{info_hash}", s.admin(h.removeTorrent))
	m.Handle("POST /api/v1/pools/{id}/close", s.admin(h.close))
	m.Handle("GET /api/v1/pools/{id}/deposits", s.admin(h.poolDeposits))
	m.Handle("GET /api/v1/deposits", s.admin(h.unclaimed))
	m.Handle("POST /api/v1/deposits/rescan", s.admin(h.rescan))
	m.Handle("POST /api/v1/torrents/{info_hash}/bounty", s.admin(h.bounty))
}

type poolRoutes struct {
	s     *Server
	pools *rewards.Pools
}

type createPoolRequest struct {
	Name, Owner, RefundAddress, Budget string
	Torrents                           []string
}

// decodeCreatePool reads and validates the body of POST /api/v1/pools.
func decodeCreatePool(r io.Reader) (createPoolRequest, *apiError) {
	obj, aerr := readObject(r, []string{"name", "owner", "refund_address", "torrents", "budget_per_epoch"})
	if aerr != nil {
		return createPoolRequest{}, aerr
	}
	var req createPoolRequest
	if req.Name, aerr = stringField(obj, "name"); aerr != nil {
		return req, aerr
	}
	if aerr = validateName("name", req.Name, rewards.MaxPoolNameLen); aerr != nil {
		return req, aerr
	}
	if req.Owner, aerr = stringField(obj, "owner"); aerr != nil {
		return req, aerr
	}
	if aerr = validateName("owner", req.Owner, rewards.MaxPoolNameLen); aerr != nil {
		return req, aerr
	}
	if req.RefundAddress, aerr = addressField(obj, "refund_address"); aerr != nil {
		return req, aerr
	}
	if req.Torrents, aerr = torrentsField(obj, "torrents", 0); aerr != nil {
		return req, aerr
	}
	if req.Budget, aerr = budgetField(obj, "budget_per_epoch"); aerr != nil {
		return req, aerr
	}
	return req, nil
}

type bountyRequest struct{ RefundAddress, Budget string }

// decodeBounty reads the body of POST /api/v1/torrents/{info_hash}/bounty.
func decodeBounty(r io.Reader) (bountyRequest, *apiError) {
	obj, aerr := readObject(r, []string{"refund_address", "budget_per_epoch"})
	if aerr != nil {
		return bountyRequest{}, aerr
	}
	var req bountyRequest
	if req.RefundAddress, aerr = addressField(obj, "refund_address"); aerr != nil {
		return req, aerr
	}
	req.Budget, aerr = budgetField(obj, "budget_per_epoch")
	return req, aerr
}

func addressField(obj map[string]json.RawMessage, key string) (string, *apiError) {
	s, aerr := stringField(obj, key)
	if aerr != nil {
		return "", aerr
	}
	if _, err := chain.ParseAddress(s); err != nil {
		return "", badRequest("invalid field %q: %s is not a TRON address (base58 T...): %v", key, quoteInput(s), err)
	}
	return s, nil
}

func budgetField(obj map[string]json.RawMessage, key string) (string, *apiError) {
	if k := jsonKind(obj[key]); k != "string" {
		return "", badRequest("invalid field %q: must be a string of decimal digits (token base units; numbers lose precision), got %s", key, k)
	}
	s, aerr := stringField(obj, key)
	if aerr != nil {
		return "", aerr
	}
	v, err := rewards.ParseAmount(s)
	if err != nil {
		return "", badRequest("invalid field %q: %v", key, err)
	}
	if v.Sign() == 0 {
		return "", badRequest("invalid field %q: must be positive", key)
	}
	return s, nil
}

// torrentsField reads an array of info hashes (40 hex digits), lower-cased.
func torrentsField(obj map[string]json.RawMessage, key string, minLen int) ([]string, *apiError) {
	raw := obj[key]
	if k := jsonKind(raw); k != "array" {
		return nil, badRequest("invalid field %q: must be an array of info hashes, got %s", key, k)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, badRequest("invalid field %q: must be an array of info hashes", key)
	}
	if len(items) < minLen || len(items) > rewards.MaxPoolTorrents {
		return nil, badRequest("invalid field %q: want %d..%d info hashes, got %d", key, minLen, rewards.MaxPoolTorrents, len(items))
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		var s *string
		if err := json.Unmarshal(it, &s); err != nil || s == nil {
			return nil, badRequest("invalid field %q: item %d must be a string, got %s", key, i, jsonKind(it))
		}
		ih, err := registry.ParseInfoHash(*s)
		if err != nil {
			return nil, badRequest("invalid field %q: item %d must be 40 hexadecimal characters, got %s", key, i, quoteInput(*s))
		}
		out = append(out, ih.String())
	}
	return out, nil
}

// registered answers 400 naming the first torrent that is not registered.
func (h *poolRoutes) registered(w http.ResponseWriter, r *http.Request, torrents []string) bool {
	for _, t := range torrents {
		ih, _ := registry.ParseInfoHash(t)
		if _, err := h.s.store.Torrent(r.Context(), ih); err != nil {
			if errors.Is(err, registry.ErrNotFound) {
				writeError(w, http.StatusBadRequest, "torrent "+t+" is not registered (POST /api/v1/torrents first)")
				return false
			}
			h.s.internalError(w, r, "pool torrents", err)
			return false
		}
	}
	return true
}

func (h *poolRoutes) create(w http.ResponseWriter, r *http.Request) {
	req, aerr := decodeCreatePool(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if aerr != nil {
		writeError(w, aerr.status, aerr.msg)
		return
	}
	if !h.registered(w, r, req.Torrents) {
		return
	}
	v, err := h.pools.Create(r.Context(), rewards.PoolSpec{Name: req.Name, Owner: req.Owner, RefundAddress: req.RefundAddress,
		Torrents: req.Torrents, BudgetPerEpoch: req.Budget})
	if h.poolError(w, r, "create pool", "", err) {
		return
	}
	h.s.log.Info("pool created", zap.String("action", "pool.create"), zap.String("pool", v.ID), zap.String("owner", v.Owner),
		zap.String("deposit_address", v.DepositAddress))
	writeJSON(w, http.StatusCreated, v)
}

func (h *poolRoutes) list(w http.ResponseWriter, r *http.Request) {
	list, err := h.pools.List(r.Context())
	if err != nil {
		h.s.internalError(w, r, "list pools", err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Pools []rewards.PoolView `json:"pools"`
	}{list})
}

func (h *poolRoutes) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	v, err := h.pools.Get(r.Context(), id)
	if h.poolError(w, r, "get pool", id, err) {
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *poolRoutes) addTorrents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := h.pools.Get(r.Context(), id); h.poolError(w, r, "add pool torrents", id, err) {
		return
	}
	obj, aerr := readObject(http.MaxBytesReader(w, r.Body, MaxBodyBytes), []string{"torrents"})
	if aerr != nil {
		writeError(w, aerr.status, aerr.msg)
		return
	}
	ts, aerr := torrentsField(obj, "torrents", 1)
	if aerr != nil {
		writeError(w, aerr.status, aerr.msg)
		return
	}
	if !h.registered(w, r, ts) {
		return
	}
	v, err := h.pools.SetTorrents(r.Context(), id, ts, true)
	if h.poolError(w, r, "add pool torrents", id, err) {
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *poolRoutes) removeTorrent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ih, aerr := parseInfoHash(r.PathValue("info_hash"))
	if aerr != nil {
		writeError(w, aerr.status, aerr.msg)
		return
	}
	v, err := h.pools.SetTorrents(r.Context(), id, []string{ih.String()}, false)
	if h.poolError(w, r, "remove pool torrent", id, err) {
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *poolRoutes) close(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	v, err := h.pools.Close(r.Context(), id)
	if h.poolError(w, r, "close pool", id, err) {
		return
	}
	h.s.log.Info("pool close requested", zap.String("action", "pool.close"), zap.String("pool", id), zap.String("state", v.State))
	status := http.StatusAccepted // the settler refunds it shortly
	if v.State == rewards.PoolClosed {
		status = http.StatusOK
	}
	writeJSON(w, status, v)
}

type depositPage struct {
	Deposits []rewards.Deposit `json:"deposits"`
}

func (h *poolRoutes) poolDeposits(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == rewards.GlobalPool {
		writeError(w, http.StatusNotFound, "the global pool has no deposit address")
		return
	}
	h.deposits(w, r, id)
}

func (h *poolRoutes) unclaimed(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch q.Get("unclaimed") {
	case "1", "true":
	default:
		writeError(w, http.StatusBadRequest, "unclaimed: want unclaimed=1 (a pool's deposits are at /api/v1/pools/{id}/deposits)")
		return
	}
	h.deposits(w, r, "")
}

func (h *poolRoutes) deposits(w http.ResponseWriter, r *http.Request, pool string) {
	limit, aerr := intParam("limit", r.URL.Query().Get("limit"), 100, 1, 1000)
	if aerr != nil {
		writeError(w, aerr.status, aerr.msg)
		return
	}
	list, err := h.pools.Deposits(r.Context(), pool, limit)
	if h.poolError(w, r, "list deposits", pool, err) {
		return
	}
	if list == nil {
		list = []rewards.Deposit{}
	}
	writeJSON(w, http.StatusOK, depositPage{Deposits: list})
}

type rescanResponse struct {
	Previous int64 `json:"previous"` // the cursor before (the next block the watcher would have read)
	Cursor   int64 `json:"cursor"`   // the next block it reads now
}

// rescan moves the deposit watcher's cursor back to from_block: the
// watcher reads those blocks again, credits what it missed, and the
// deposit markers make what it credited before a no-op. Moving forward is
// a 409 (it would skip blocks).
func (h *poolRoutes) rescan(w http.ResponseWriter, r *http.Request) {
	obj, aerr := readObject(http.MaxBytesReader(w, r.Body, MaxBodyBytes), []string{"from_block"})
	if aerr != nil {
		writeError(w, aerr.status, aerr.msg)
		return
	}
	raw := obj["from_block"]
	var from int64
	if jsonKind(raw) != "number" || json.Unmarshal(raw, &from) != nil || from < 0 {
		writeError(w, http.StatusBadRequest, "invalid field \"from_block\": must be a block number (an integer >= 0), got "+quoteInput(string(raw)))
		return
	}
	prev, next, err := h.pools.RescanDeposits(r.Context(), from)
	if errors.Is(err, rewards.ErrRescanForward) {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	if err != nil {
		h.s.internalError(w, r, "rescan deposits", err)
		return
	}
	h.s.log.Info("deposit rescan requested", zap.String("action", "deposits.rescan"), zap.Int64("previous", prev), zap.Int64("cursor", next))
	writeJSON(w, http.StatusOK, rescanResponse{Previous: prev, Cursor: next})
}

func (h *poolRoutes) bounty(w http.ResponseWriter, r *http.Request) {
	ih, aerr := parseInfoHash(r.PathValue("info_hash"))
	if aerr != nil {
		writeError(w, aerr.status, aerr.msg)
		return
	}
	if _, err := h.s.store.Torrent(r.Context(), ih); err != nil {
		if errors.Is(err, registry.ErrNotFound) {
			writeError(w, http.StatusNotFound, "torrent not found")
			return
		}
		h.s.internalError(w, r, "bounty", err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		aerr := jsonError(err)
		writeError(w, aerr.status, aerr.msg)
		return
	}
	var req bountyRequest
	if strings.TrimSpace(string(body)) != "" {
		if req, aerr = decodeBounty(strings.NewReader(string(body))); aerr != nil {
			writeError(w, aerr.status, aerr.msg)
			return
		}
	}
	v, created, err := h.pools.Bounty(r.Context(), ih.String(), rewards.PoolSpec{RefundAddress: req.RefundAddress, BudgetPerEpoch: req.Budget})
	if errors.Is(err, rewards.ErrPoolInvalid) && req.RefundAddress == "" {
		writeError(w, http.StatusBadRequest, "this torrent has no open bounty pool: send {\"refund_address\",\"budget_per_epoch\"} to create one")
		return
	}
	if h.poolError(w, r, "bounty", "", err) {
		return
	}
	if created {
		h.s.log.Info("bounty pool created", zap.String("action", "pool.bounty"), zap.String("pool", v.ID), zap.String("info_hash", ih.String()),
			zap.String("deposit_address", v.DepositAddress))
		writeJSON(w, http.StatusCreated, v)
		return
	}
	out := bountyResponse{PoolView: v, Existing: true}
	if req.RefundAddress != "" {
		out.Note = "this torrent already has an open bounty pool (" + v.ID + "): the request body was not applied; close that pool first to create a new one"
	}
	writeJSON(w, http.StatusOK, out)
}

// bountyResponse is an existing bounty pool: Existing says the call found
// it rather than creating it, and Note says why a body was not applied.
type bountyResponse struct {
	rewards.PoolView
	Existing bool   `json:"existing"`
	Note     string `json:"note,omitempty"`
}

// poolError answers an error from the pool store and reports whether there
// was one.
func (h *poolRoutes) poolError(w http.ResponseWriter, r *http.Request, op, id string, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, rewards.ErrPoolNotFound):
		writeError(w, http.StatusNotFound, "pool not found")
	case errors.Is(err, rewards.ErrPoolClosed), errors.Is(err, rewards.ErrPoolBusy), errors.Is(err, rewards.ErrBountyTorrents):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, rewards.ErrPoolInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, rewards.ErrNoKeystore):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		h.s.internalError(w, r, op, err, zap.String("pool", id))
	}
	return true
}
