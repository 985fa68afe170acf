package main

import "math/rand/v2"

// Churn (-churn E): peer number n is peer j = n / T of torrent i = n % T
// (T = -torrents), as -fill numbers them, so a -fill run with the same
// -torrents and -peers loads exactly the starting population 0..N-1
// (N = T x -peers). Request num belongs to group g = num / E: its first
// request announces peer N+g joining (event started), its second the oldest
// live peer g leaving (event stopped), the others announce (event none) a
// live peer of a torrent the popularity model picks. Every torrent keeps
// -peers live peers and the tracker's peer count stays N, while the peers
// themselves are replaced (E = 4: one join and one leave in 4 requests).

// isChurn tells whether request num is a join or a leave.
func (o *options) isChurn(num int64) bool {
	return o.churn > 0 && num%int64(o.churn) < 2
}

// churnPeer is the peer number and the event of request num.
func (o *options) churnPeer(num int64, r *rand.Rand) (n int64, event uint32) {
	t := int64(o.model.Torrents)
	e := int64(o.churn)
	g := num / e
	switch num % e {
	case 0:
		return t*int64(o.model.Peers) + g, eventStarted
	case 1:
		return g, eventStopped
	}
	// Live after this group: [g+1, g+1+N). Torrent i's live peers there are
	// n = i + t*j for j in [jlo, jlo+Peers). Skip j = jlo, the next of the
	// torrent to leave (t groups from now at the latest), so that an
	// announce racing its stop on another socket cannot bring it back.
	i := int64(o.model.PickTorrent(r))
	lo := g + 1
	jlo := int64(0)
	if lo > i {
		jlo = (lo - i + t - 1) / t
	}
	return i + t*(jlo+1+int64(r.IntN(o.model.Peers-1))), eventNone
}
