package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/chihaya/chihaya/bittorrent"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/middleware/registry"
)

// userJSON is a user as the admin API shows it, passkey included.
type userJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Passkey   string `json:"passkey"`
	Banned    bool   `json:"banned"`
	CreatedAt int64  `json:"created_at"` // Unix seconds
}

func newUserJSON(u registry.User) userJSON {
	return userJSON{ID: u.ID, Name: u.Name, Passkey: u.Passkey, Banned: u.Banned, CreatedAt: u.CreatedAt}
}

type torrentJSON struct {
	InfoHash  string `json:"info_hash"` // lowercase hex
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	CreatedAt int64  `json:"created_at"` // Unix seconds
}

func newTorrentJSON(t registry.Torrent) torrentJSON {
	return torrentJSON{InfoHash: t.InfoHash.String(), Name: t.Name, Size: t.Size, CreatedAt: t.CreatedAt}
}

type torrentStatsJSON struct {
	torrentJSON
	Seeders   uint64 `json:"seeders"`
	Leechers  uint64 `json:"leechers"`
	Completed int64  `json:"completed"`
}

// validUserID rejects ids that cannot exist before they reach Redis. The
// store makes 16 hex digits; this is looser so a future id format still
// works, but keeps odd bytes out of Redis keys.
func validUserID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	req, aerr := decodeCreateUser(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if aerr != nil {
		writeError(w, aerr.status, aerr.msg)
		return
	}
	u, err := s.store.CreateUser(r.Context(), req.Name)
	if err != nil {
		s.internalError(w, r, "create user", err)
		return
	}
	s.syncUser(r, u.ID)
	s.log.Info("user created", zap.String("action", "user.create"), zap.String("user_id", u.ID))
	w.Header().Set("Location", "/api/v1/users/"+u.ID)
	writeJSON(w, http.StatusCreated, newUserJSON(u))
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validUserID(id) {
		writeError(w, http.StatusNotFound, "user not found")
		return
	}
	u, err := s.store.User(r.Context(), id)
	if err != nil {
		s.userError(w, r, "get user", id, err)
		return
	}
	writeJSON(w, http.StatusOK, newUserJSON(u))
}

func (s *Server) rotatePasskey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validUserID(id) {
		writeError(w, http.StatusNotFound, "user not found")
		return
	}
	u, err := s.store.RotatePasskey(r.Context(), id)
	if err != nil {
		s.userError(w, r, "rotate passkey", id, err)
		return
	}
	s.syncUser(r, id)
	s.log.Info("passkey rotated", zap.String("action", "user.rotate_passkey"), zap.String("user_id", id))
	writeJSON(w, http.StatusOK, newUserJSON(u))
}

func (s *Server) setBanned(banned bool) http.HandlerFunc {
	action, msg := "user.unban", "user unbanned"
	if banned {
		action, msg = "user.ban", "user banned"
	}
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !validUserID(id) {
			writeError(w, http.StatusNotFound, "user not found")
			return
		}
		u, err := s.store.SetBanned(r.Context(), id, banned)
		if err != nil {
			s.userError(w, r, action, id, err)
			return
		}
		s.syncUser(r, id)
		s.log.Info(msg, zap.String("action", action), zap.String("user_id", id))
		writeJSON(w, http.StatusOK, newUserJSON(u))
	}
}

func (s *Server) userError(w http.ResponseWriter, r *http.Request, op, id string, err error) {
	if errors.Is(err, registry.ErrNotFound) {
		writeError(w, http.StatusNotFound, "user not found")
		return
	}
	s.internalError(w, r, op, err, zap.String("user_id", id))
}

func (s *Server) createTorrent(w http.ResponseWriter, r *http.Request) {
	req, aerr := decodeCreateTorrent(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if aerr != nil {
		writeError(w, aerr.status, aerr.msg)
		return
	}
	t, err := s.store.PutTorrent(r.Context(), registry.Torrent{InfoHash: req.InfoHash, Name: req.Name, Size: req.Size})
	switch {
	case errors.Is(err, registry.ErrExists):
		writeError(w, http.StatusConflict, fmt.Sprintf("torrent %s is already registered", req.InfoHash))
		return
	case err != nil:
		s.internalError(w, r, "create torrent", err, zap.Stringer("info_hash", req.InfoHash))
		return
	}
	s.syncTorrent(r, t.InfoHash)
	s.log.Info("torrent registered", zap.String("action", "torrent.create"), zap.Stringer("info_hash", t.InfoHash))
	w.Header().Set("Location", "/api/v1/torrents/"+t.InfoHash.String())
	writeJSON(w, http.StatusCreated, newTorrentJSON(t))
}

func (s *Server) getTorrent(w http.ResponseWriter, r *http.Request) {
	ih, aerr := parseInfoHash(r.PathValue("info_hash"))
	if aerr != nil {
		writeError(w, aerr.status, aerr.msg)
		return
	}
	t, err := s.store.Torrent(r.Context(), ih)
	if err != nil {
		s.torrentError(w, r, "get torrent", ih, err)
		return
	}
	out := torrentStatsJSON{torrentJSON: newTorrentJSON(t)}
	for _, af := range []bittorrent.AddressFamily{bittorrent.IPv4, bittorrent.IPv6} {
		sc := s.swarms.ScrapeSwarm(ih, af)
		out.Seeders += uint64(sc.Complete)
		out.Leechers += uint64(sc.Incomplete)
	}
	// The cache holds the count in Redis plus this instance's unflushed
	// completions; a torrent registered since the last cache update has none.
	if e, ok := s.cache.Torrent(ih); ok {
		out.Completed = e.Completed()
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteTorrent(w http.ResponseWriter, r *http.Request) {
	ih, aerr := parseInfoHash(r.PathValue("info_hash"))
	if aerr != nil {
		writeError(w, aerr.status, aerr.msg)
		return
	}
	if err := s.store.DeleteTorrent(r.Context(), ih); err != nil {
		s.torrentError(w, r, "delete torrent", ih, err)
		return
	}
	s.syncTorrent(r, ih)
	s.log.Info("torrent deleted", zap.String("action", "torrent.delete"), zap.Stringer("info_hash", ih))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) torrentError(w http.ResponseWriter, r *http.Request, op string, ih bittorrent.InfoHash, err error) {
	if errors.Is(err, registry.ErrNotFound) {
		writeError(w, http.StatusNotFound, "torrent not found")
		return
	}
	s.internalError(w, r, op, err, zap.Stringer("info_hash", ih))
}

// syncUser and syncTorrent update this instance's announce cache before the
// API answers, so a client announcing the moment registration returns is
// not refused. A failure is only logged: the write is done, and pub/sub plus
// the periodic reload bring the cache up to date.
func (s *Server) syncUser(r *http.Request, id string) {
	if err := s.cache.SyncUser(r.Context(), id); err != nil {
		s.log.Warn("cache sync after user change", zap.String("user_id", id), zap.Error(err))
	}
}

func (s *Server) syncTorrent(r *http.Request, ih bittorrent.InfoHash) {
	if err := s.cache.SyncTorrent(r.Context(), ih); err != nil {
		s.log.Warn("cache sync after torrent change", zap.Stringer("info_hash", ih), zap.Error(err))
	}
}
