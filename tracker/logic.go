package tracker

import (
	"context"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/frontend"
	"github.com/chihaya/chihaya/middleware"
	"github.com/chihaya/chihaya/pkg/log"
	"github.com/chihaya/chihaya/pkg/stop"
	"github.com/chihaya/chihaya/pkg/timecache"
)

// Logic runs the middleware hooks like chihaya's middleware.Logic, without
// chihaya's own response and swarm-interaction hooks (the swarm.Responder
// does both, and must be the last PreHook) and without allocating: the
// frontends pass in a request, response and context they reuse, so an
// announce through Logic allocates only what the hooks do.
//
// It implements frontend.TrackerLogic too (that path allocates the
// response, as chihaya's does), so the frontends also run chihaya's Logic.
type Logic struct {
	interval    time.Duration
	minInterval time.Duration
	pre, post   []middleware.Hook
	// Throttles for AfterAnnounce and AfterScrape, which log errors
	// themselves (the frontends count and log the errors of
	// afterAnnounce and afterScrape).
	announceLog, scrapeLog logThrottle
}

var _ frontend.TrackerLogic = (*Logic)(nil)

// NewLogic returns the hook chain. preHooks must end with the hook that
// fills the response (swarm.Responder).
func NewLogic(cfg middleware.ResponseConfig, preHooks, postHooks []middleware.Hook) *Logic {
	return &Logic{
		interval:    cfg.AnnounceInterval,
		minInterval: cfg.MinAnnounceInterval,
		pre:         preHooks,
		post:        postHooks,
	}
}

// announceInto runs the PreHooks for req into resp, which the caller has
// reset (peer slices may carry spare capacity for the Responder to fill).
func (l *Logic) announceInto(ctx context.Context, req *bittorrent.AnnounceRequest, resp *bittorrent.AnnounceResponse) (context.Context, error) {
	resp.Interval, resp.MinInterval, resp.Compact = l.interval, l.minInterval, req.Compact
	var err error
	for _, h := range l.pre {
		if ctx, err = h.HandleAnnounce(ctx, req, resp); err != nil {
			return ctx, err
		}
	}
	return ctx, nil
}

// scrapeInto runs the PreHooks for req into resp (Files reset by the caller).
func (l *Logic) scrapeInto(ctx context.Context, req *bittorrent.ScrapeRequest, resp *bittorrent.ScrapeResponse) (context.Context, error) {
	var err error
	for _, h := range l.pre {
		if ctx, err = h.HandleScrape(ctx, req, resp); err != nil {
			return ctx, err
		}
	}
	return ctx, nil
}

// HandleAnnounce implements frontend.TrackerLogic.
func (l *Logic) HandleAnnounce(ctx context.Context, req *bittorrent.AnnounceRequest) (context.Context, *bittorrent.AnnounceResponse, error) {
	resp := &bittorrent.AnnounceResponse{}
	ctx, err := l.announceInto(ctx, req, resp)
	if err != nil {
		return nil, nil, err
	}
	return ctx, resp, nil
}

// AfterAnnounce implements frontend.TrackerLogic: the PostHooks, in order,
// stopping at the first error, which is logged (throttled).
func (l *Logic) AfterAnnounce(ctx context.Context, req *bittorrent.AnnounceRequest, resp *bittorrent.AnnounceResponse) {
	if err := l.afterAnnounce(ctx, req, resp); err != nil {
		logThrottled(&l.announceLog, "post-announce hooks failed", err)
	}
}

// afterAnnounce runs the PostHooks, in order, stopping at the first error.
func (l *Logic) afterAnnounce(ctx context.Context, req *bittorrent.AnnounceRequest, resp *bittorrent.AnnounceResponse) error {
	var err error
	for _, h := range l.post {
		if ctx, err = h.HandleAnnounce(ctx, req, resp); err != nil {
			return err
		}
	}
	return nil
}

// logThrottled logs err through chihaya's logger, throttled by t.
func logThrottled(t *logThrottle, msg string, err error) {
	if ok, held := t.allow(timecache.NowUnixNano(), 1); ok {
		log.Error(msg, log.Err(err), log.Fields{"suppressed": held})
	}
}

// HandleScrape implements frontend.TrackerLogic.
func (l *Logic) HandleScrape(ctx context.Context, req *bittorrent.ScrapeRequest) (context.Context, *bittorrent.ScrapeResponse, error) {
	resp := &bittorrent.ScrapeResponse{Files: make([]bittorrent.Scrape, 0, len(req.InfoHashes))}
	ctx, err := l.scrapeInto(ctx, req, resp)
	if err != nil {
		return nil, nil, err
	}
	return ctx, resp, nil
}

// AfterScrape implements frontend.TrackerLogic, as AfterAnnounce.
func (l *Logic) AfterScrape(ctx context.Context, req *bittorrent.ScrapeRequest, resp *bittorrent.ScrapeResponse) {
	if err := l.afterScrape(ctx, req, resp); err != nil {
		logThrottled(&l.scrapeLog, "post-scrape hooks failed", err)
	}
}

// afterScrape runs the PostHooks, in order, stopping at the first error.
func (l *Logic) afterScrape(ctx context.Context, req *bittorrent.ScrapeRequest, resp *bittorrent.ScrapeResponse) error {
	var err error
	for _, h := range l.post {
		if ctx, err = h.HandleScrape(ctx, req, resp); err != nil {
			return err
		}
	}
	return nil
}

// Stop stops every hook that is a stop.Stopper.
func (l *Logic) Stop() stop.Result {
	g := stop.NewGroup()
	for _, hooks := range [][]middleware.Hook{l.pre, l.post} {
		for _, h := range hooks {
			if s, ok := h.(stop.Stopper); ok {
				g.Add(s)
			}
		}
	}
	return g.Stop()
}

// intoLogic is the interface the frontends run: Logic's allocation-free
// one, or any other frontend.TrackerLogic through logicAdapter (intoOf).
type intoLogic interface {
	announceInto(context.Context, *bittorrent.AnnounceRequest, *bittorrent.AnnounceResponse) (context.Context, error)
	scrapeInto(context.Context, *bittorrent.ScrapeRequest, *bittorrent.ScrapeResponse) (context.Context, error)
	// The PostHooks, their error for the caller to count and log.
	afterAnnounce(context.Context, *bittorrent.AnnounceRequest, *bittorrent.AnnounceResponse) error
	afterScrape(context.Context, *bittorrent.ScrapeRequest, *bittorrent.ScrapeResponse) error
}

// intoOf is l's intoLogic: l itself when it has one (Logic), else an
// adapter.
func intoOf(l frontend.TrackerLogic) intoLogic {
	if into, ok := l.(intoLogic); ok {
		return into
	}
	return logicAdapter{l}
}

// logicAdapter runs a frontend.TrackerLogic (chihaya's middleware.Logic)
// as an intoLogic: its responses are copied into the frontend's, which
// allocates as chihaya does; its post hooks log their own errors.
type logicAdapter struct{ l frontend.TrackerLogic }

func (a logicAdapter) announceInto(ctx context.Context, req *bittorrent.AnnounceRequest, resp *bittorrent.AnnounceResponse) (context.Context, error) {
	ctx, r, err := a.l.HandleAnnounce(ctx, req)
	if err == nil {
		*resp = *r
	}
	return ctx, err
}

func (a logicAdapter) scrapeInto(ctx context.Context, req *bittorrent.ScrapeRequest, resp *bittorrent.ScrapeResponse) (context.Context, error) {
	ctx, r, err := a.l.HandleScrape(ctx, req)
	if err == nil {
		*resp = *r
	}
	return ctx, err
}

func (a logicAdapter) afterAnnounce(ctx context.Context, req *bittorrent.AnnounceRequest, resp *bittorrent.AnnounceResponse) error {
	a.l.AfterAnnounce(ctx, req, resp)
	return nil
}

func (a logicAdapter) afterScrape(ctx context.Context, req *bittorrent.ScrapeRequest, resp *bittorrent.ScrapeResponse) error {
	a.l.AfterScrape(ctx, req, resp)
	return nil
}
