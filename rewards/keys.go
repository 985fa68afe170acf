package rewards

import (
	"strconv"
	"strings"
)

// Redis keys. Everything about one user lives in the hash slot {u:<id>}, so
// account.lua touches one slot per call (Redis Cluster ready); everything
// about one epoch lives in {e:<n>}.

// KeySession is one client session: up, down, seen, seeding.
func KeySession(user, infoHashHex, peerIDHex string) string {
	return "sp:{u:" + user + "}:s:" + infoHashHex + ":" + peerIDHex
}

// KeySessions is a sorted set of a user's sessions on a torrent: member =
// peer id hex, score = last seen (for the cap, pruning silent sessions).
func KeySessions(user, infoHashHex string) string {
	return "sp:{u:" + user + "}:ss:" + infoHashHex
}

// KeyCredited holds the Unix second up to which a user's seeding of a
// torrent has been credited: one credit per (user, torrent) per second.
func KeyCredited(user, infoHashHex string) string {
	return "sp:{u:" + user + "}:c:" + infoHashHex
}

// KeyFlushToken is the last flush.lua call applied from a tracker instance
// in local session mode: per user (Redis Cluster, in the user's slot) or,
// with user "", per instance (one Redis).
func KeyFlushToken(user, instance string) string {
	if user == "" {
		return "sp:acct:fl:" + instance
	}
	return "sp:{u:" + user + "}:fl:" + instance
}

// KeyUserEpoch is a user's epoch hash: "pts:<pool>" micro-points,
// "seed_s" seed seconds, "up"/"down" self-reported bytes (statistics only).
func KeyUserEpoch(user string, epoch int64) string {
	return "sp:{u:" + user + "}:e:" + strconv.FormatInt(epoch, 10)
}

// KeyTorrentIPs is the set of addresses a user announced a torrent from in
// an epoch (receipt checks refuse upload between users sharing one).
func KeyTorrentIPs(user, infoHashHex string, epoch int64) string {
	return "sp:{u:" + user + "}:ip:" + infoHashHex + ":" + strconv.FormatInt(epoch, 10)
}

// KeyBalance is a user's unpaid balance in token base units (decimal string).
func KeyBalance(user string) string { return "sp:{u:" + user + "}:bal" }

// KeyCredits maps epoch -> amount credited to the user for it; its fields
// make crediting idempotent.
func KeyCredits(user string) string { return "sp:{u:" + user + "}:cr" }

// KeyEpochUsers is the set of users with activity in an epoch.
func KeyEpochUsers(epoch int64) string {
	return "sp:{e:" + strconv.FormatInt(epoch, 10) + "}:users"
}

// KeyEpochRecord is the sealed settlement record of an epoch (JSON).
func KeyEpochRecord(epoch int64) string {
	return "sp:{e:" + strconv.FormatInt(epoch, 10) + "}:rec"
}

// KeyEpochApplied marks that every credit of a sealed epoch is applied.
func KeyEpochApplied(epoch int64) string {
	return "sp:{e:" + strconv.FormatInt(epoch, 10) + "}:applied"
}

// Settler coordination.
const (
	KeySettleLock  = "sp:settle:lock"  // leader lock, value = fencing token
	KeySettleFence = "sp:settle:fence" // INCR source of fencing tokens
	KeyFirstEpoch  = "sp:settle:first" // the first epoch this ledger accounts
)

// poolPoints picks the "pts:<pool>" fields of a user's epoch hash, by pool
// (not the per-torrent attribution fields "pts:@<hex>", see torrentPoints).
func poolPoints(h map[string]string) map[string]string {
	out := map[string]string{}
	for f, v := range h {
		if pool, ok := strings.CutPrefix(f, "pts:"); ok && !strings.HasPrefix(pool, TorrentPointsPrefix) {
			out[pool] = v
		}
	}
	return out
}
