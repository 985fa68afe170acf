// Package swarm holds the hooks that build announce and scrape answers from
// the peer store, replacing chihaya's built-in response hook.
package swarm

import (
	"context"
	"errors"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/middleware"
	"github.com/chihaya/chihaya/storage"

	"github.com/seedpay/seedpay/internal/reqctx"
)

// errDNE is storage.ErrResourceDoesNotExist boxed once: converting the
// string-typed ClientError to error allocates on every use.
var errDNE error = storage.ErrResourceDoesNotExist

// Completions is where completed downloads are counted and read back.
type Completions interface {
	CountCompleted(ih bittorrent.InfoHash)
	Completed(ih bittorrent.InfoHash) (int64, bool)
}

// Responder updates the swarm and fills announce and scrape responses,
// replacing chihaya's response and swarm-interaction hooks. It differs from
// them in three ways: the swarm is updated before the answer is built, so the
// seeder/leecher counts include the requester (as opentracker does); the
// requester never appears in its own peer list (chihaya returns it when the
// swarm is otherwise empty, and clients then dial themselves); and scrapes
// report "downloaded". It must be the last PreHook.
type Responder struct {
	store       storage.PeerStore
	appender    peerAppender // store, when it can fill a caller's buffer
	completions Completions
}

// peerAppender is the peer store's allocation-free peer listing
// (tracker/peerstore.Store.AppendPeers).
type peerAppender interface {
	AppendPeers(dst []bittorrent.Peer, ih bittorrent.InfoHash, seeder bool, numWant int, announcer bittorrent.Peer) ([]bittorrent.Peer, error)
}

var _ middleware.Hook = (*Responder)(nil)

// NewResponder returns the response hook.
func NewResponder(store storage.PeerStore, c Completions) *Responder {
	a, _ := store.(peerAppender)
	return &Responder{store: store, appender: a, completions: c}
}

// HandleAnnounce records the requester in the swarm, then adds swarm counts
// and peers to resp. When the store can append peers into a buffer, the
// peers go into the spare capacity of resp's peer slice of the requester's
// address family (the frontends pass a reused, pre-sized one), so the
// announce allocates nothing here.
func (h *Responder) HandleAnnounce(ctx context.Context, req *bittorrent.AnnounceRequest, resp *bittorrent.AnnounceResponse) (context.Context, error) {
	ctx = reqctx.With(ctx, middleware.SkipResponseHookKey, true)
	ctx = reqctx.With(ctx, middleware.SkipSwarmInteractionKey, true)
	if err := h.update(req); err != nil {
		return ctx, err
	}
	s := h.store.ScrapeSwarm(req.InfoHash, req.IP.AddressFamily)
	resp.Complete, resp.Incomplete = s.Complete, s.Incomplete
	if req.Event == bittorrent.Stopped || req.NumWant == 0 {
		return ctx, nil // a leaving peer needs no peers
	}

	dst := &resp.IPv4Peers
	if req.IP.AddressFamily == bittorrent.IPv6 {
		dst = &resp.IPv6Peers
	}
	if h.appender != nil {
		// tracker/peerstore never lists the announcer itself.
		peers, err := h.appender.AppendPeers((*dst)[:0], req.InfoHash, req.Left == 0, int(req.NumWant), req.Peer)
		if err != nil && !errors.Is(err, errDNE) {
			return ctx, err
		}
		*dst = peers
		return ctx, nil
	}
	// Ask for one more than wanted: the requester may be among them.
	peers, err := h.store.AnnouncePeers(req.InfoHash, req.Left == 0, int(req.NumWant)+1, req.Peer)
	if err != nil && !errors.Is(err, errDNE) {
		return ctx, err
	}
	peers = withoutRequester(peers, req.Peer)
	if len(peers) > int(req.NumWant) {
		peers = peers[:req.NumWant]
	}
	*dst = peers
	return ctx, nil
}

// update applies the announce to the peer store.
func (h *Responder) update(req *bittorrent.AnnounceRequest) error {
	var err error
	switch {
	case req.Event == bittorrent.Stopped:
		err = h.store.DeleteSeeder(req.InfoHash, req.Peer)
		if err == nil || errors.Is(err, errDNE) {
			err = h.store.DeleteLeecher(req.InfoHash, req.Peer)
		}
	case req.Event == bittorrent.Completed, req.Left == 0:
		// Graduate rather than put: a client that finished without sending
		// "completed" must not stay counted as a leecher too.
		err = h.store.GraduateLeecher(req.InfoHash, req.Peer)
	default:
		err = h.store.PutLeecher(req.InfoHash, req.Peer)
	}
	if errors.Is(err, errDNE) {
		return nil
	}
	return err
}

// withoutRequester drops every entry that is the requester: the same peer id,
// or the same address and port (a client that changed its peer id).
func withoutRequester(peers []bittorrent.Peer, self bittorrent.Peer) []bittorrent.Peer {
	out := peers[:0]
	for _, p := range peers {
		if p.ID == self.ID || (p.Port == self.Port && p.IP.Equal(self.IP.IP)) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// HandleScrape adds one entry per requested info hash, in request order.
func (h *Responder) HandleScrape(ctx context.Context, req *bittorrent.ScrapeRequest, resp *bittorrent.ScrapeResponse) (context.Context, error) {
	ctx = reqctx.With(ctx, middleware.SkipResponseHookKey, true)
	for _, ih := range req.InfoHashes {
		s := h.store.ScrapeSwarm(ih, req.AddressFamily)
		s.InfoHash = ih
		if n, ok := h.completions.Completed(ih); ok {
			s.Snatches = uint32(min(n, 1<<32-1))
		}
		resp.Files = append(resp.Files, s)
	}
	return ctx, nil
}

// CompletionCounter is the PostHook that counts "completed" events.
type CompletionCounter struct {
	completions Completions
}

var _ middleware.Hook = (*CompletionCounter)(nil)

// NewCompletionCounter returns the completion-counting hook.
func NewCompletionCounter(c Completions) *CompletionCounter {
	return &CompletionCounter{completions: c}
}

// HandleAnnounce counts a completed event.
func (h *CompletionCounter) HandleAnnounce(ctx context.Context, req *bittorrent.AnnounceRequest, _ *bittorrent.AnnounceResponse) (context.Context, error) {
	if req.Event == bittorrent.Completed {
		h.completions.CountCompleted(req.InfoHash)
	}
	return ctx, nil
}

// HandleScrape does nothing: scrapes complete nothing.
func (h *CompletionCounter) HandleScrape(ctx context.Context, _ *bittorrent.ScrapeRequest, _ *bittorrent.ScrapeResponse) (context.Context, error) {
	return ctx, nil
}
