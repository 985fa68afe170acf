package rewards

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// A snapshot is the sessions and credited-until marks of every record,
// packed little-endian in parts of about snapPartSize bytes:
//
//	per record: uint16 user length, user, info hash [20], int64 mark,
//	uint16 sessions, then per session: peer id [20],
//	int64 up, down, seen, touched, uint8 flags (1 seeding, 2 member).
//
// It is taken together with a flush (the same shard locks swap the
// aggregates out), so the marks it holds are those of the credit of that
// flush and the ones before it.
const (
	snapPartSize = 1 << 20
	snapVersion  = "2"
)

// Snapshot saves the sessions to Redis (replacing the previous snapshot)
// and writes the aggregates taken with them. It needs no pending flush:
// one that failed is retried first, and Snapshot fails if it fails again.
func (f *LocalFlusher) Snapshot(ctx context.Context) error {
	start := f.now()
	if err := f.Flush(ctx); err != nil {
		f.snapErrors.Inc()
		return fmt.Errorf("rewards: snapshot: flush first: %w", err)
	}
	// Take the aggregates and copy the records shard by shard under the
	// same lock: every credit before the copy is in this flush or earlier.
	m := make(map[string]*userAgg)
	var parts [][]byte
	part := make([]byte, 0, snapPartSize+4096)
	records, skipped := 0, 0
	for i := range f.acct.shards {
		sh := &f.acct.shards[i]
		spare := aggMaps.Get().(map[string]*userAgg)
		sh.mu.Lock()
		agg := sh.swapAgg(spare)
		for k, r := range sh.recs {
			if len(r.sessions) == 0 {
				continue
			}
			if len(k.user) > 0xffff || len(r.sessions) > 0xffff {
				skipped++
				continue
			}
			part = appendRecord(part, k, r)
			records++
			if len(part) >= snapPartSize {
				parts = append(parts, part)
				part = make([]byte, 0, snapPartSize+4096)
			}
		}
		sh.mu.Unlock()
		mergeAggs(m, agg, spare)
	}
	if len(part) > 0 {
		parts = append(parts, part)
	}
	f.freeze(m) // may be empty: then no call
	snapSeq := f.seq

	// A new name every time (seq may not have moved since the last one):
	// the parts of the previous snapshot are never overwritten in place.
	gen := f.instance + ":" + strconv.FormatInt(snapSeq, 10) + ":" + strconv.FormatInt(f.now().UnixNano(), 36)
	old, err := f.rdb.HGet(ctx, KeyLocalSnapshot, "gen").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		f.snapErrors.Inc()
		return fmt.Errorf("rewards: snapshot: read the previous one: %w", err)
	}
	oldParts, _ := f.rdb.HGet(ctx, KeyLocalSnapshot, "parts").Int()
	pipe := f.rdb.Pipeline()
	ttl := f.acct.SessionTTL()
	for i, p := range parts {
		pipe.Set(ctx, snapPartKey(gen, i), p, ttl)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		f.snapErrors.Inc()
		return fmt.Errorf("rewards: snapshot: write %d parts: %w", len(parts), err)
	}
	// The switch to the new generation is one HSET: a crash before it
	// leaves the previous snapshot whole.
	pipe = f.rdb.Pipeline()
	pipe.HSet(ctx, KeyLocalSnapshot, "version", snapVersion, "gen", gen, "instance", f.instance,
		"seq", snapSeq, "parts", len(parts), "records", records, "taken", f.now().Unix())
	pipe.Expire(ctx, KeyLocalSnapshot, ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		f.snapErrors.Inc()
		return fmt.Errorf("rewards: snapshot: switch to %s: %w", gen, err)
	}
	if old != "" && old != gen {
		for i := 0; i < oldParts; i++ {
			f.rdb.Del(ctx, snapPartKey(old, i))
		}
	}
	// The aggregates taken with the snapshot.
	if err := f.Flush(ctx); err != nil {
		f.snapErrors.Inc()
		return fmt.Errorf("rewards: snapshot saved, its flush failed (retried next tick): %w", err)
	}
	f.snapTime.Observe(time.Since(start).Seconds())
	if skipped > 0 {
		f.log.Warn("sessions not saved: user id over 65535 bytes or over 65535 sessions on one torrent", zap.Int("records", skipped))
	}
	f.log.Info("sessions saved", zap.Int("records", records), zap.Int("parts", len(parts)), zap.Duration("took", time.Since(start)))
	return nil
}

func snapPartKey(gen string, i int) string {
	return KeyLocalSnapshot + ":" + gen + ":" + strconv.Itoa(i)
}

func appendRecord(b []byte, k utKey, r *utRecord) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(len(k.user)))
	b = append(b, k.user...)
	b = append(b, k.ih[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.mark))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(r.sessions)))
	for _, s := range r.sessions {
		b = append(b, s.pid[:]...)
		for _, v := range [...]int64{s.up, s.down, s.seen, s.touched} {
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
		var flags byte
		if s.seeding {
			flags |= 1
		}
		if s.member {
			flags |= 2
		}
		b = append(b, flags)
	}
	return b
}

const snapSessionLen = 20 + 4*8 + 1

// decodeRecords calls fn for every record of a part; it stops at the first
// malformed one.
func decodeRecords(b []byte, fn func(k utKey, r *utRecord)) error {
	for len(b) > 0 {
		if len(b) < 2 {
			return errors.New("truncated record")
		}
		ul := int(binary.LittleEndian.Uint16(b))
		b = b[2:]
		if ul == 0 || len(b) < ul+20+8+2 {
			return errors.New("truncated record")
		}
		var k utKey
		k.user = string(b[:ul])
		copy(k.ih[:], b[ul:ul+20])
		b = b[ul+20:]
		r := newUTRecord()
		r.mark = int64(binary.LittleEndian.Uint64(b))
		n := int(binary.LittleEndian.Uint16(b[8:]))
		b = b[10:]
		if len(b) < n*snapSessionLen {
			return errors.New("truncated sessions")
		}
		if n <= cap(r.sessions) {
			r.sessions = r.sessions[:n]
		} else {
			r.sessions = make([]localSession, n)
		}
		for i := range r.sessions {
			s := &r.sessions[i]
			copy(s.pid[:], b)
			s.up = int64(binary.LittleEndian.Uint64(b[20:]))
			s.down = int64(binary.LittleEndian.Uint64(b[28:]))
			s.seen = int64(binary.LittleEndian.Uint64(b[36:]))
			s.touched = int64(binary.LittleEndian.Uint64(b[44:]))
			s.seeding, s.member = b[52]&1 != 0, b[52]&2 != 0
			b = b[snapSessionLen:]
		}
		fn(k, r)
	}
	return nil
}

// restore loads the last snapshot. If the instance that wrote Redis last
// may have credited seconds after the snapshot (it crashed, or it was not
// the one that saved it), every restored mark moves up to the last second
// it may have credited: its seconds are never credited twice, at the price
// of the restored sessions' gaps before that second (under-credit after a
// crash only; a graceful stop saves the snapshot after its last flush).
func (f *LocalFlusher) restore(ctx context.Context) error {
	meta, err := f.rdb.HGetAll(ctx, KeyLocalSnapshot).Result()
	if err != nil {
		return fmt.Errorf("rewards: restore sessions: %w", err)
	}
	marker, err := f.rdb.Get(ctx, KeyLocalFlushed).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("rewards: restore sessions: read %s: %w", KeyLocalFlushed, err)
	}
	if len(meta) == 0 {
		f.log.Info("no saved sessions: accounting starts empty")
		return nil
	}
	if meta["version"] != snapVersion {
		f.log.Warn("saved sessions have an unknown version: accounting starts empty", zap.String("version", meta["version"]))
		return nil
	}
	if err := f.load(ctx, meta, marker); err != nil {
		// Starting empty is always safe: every session starts afresh.
		for i := range f.acct.shards {
			sh := &f.acct.shards[i]
			sh.mu.Lock()
			clear(sh.recs)
			sh.live = 0
			sh.mu.Unlock()
		}
		f.log.Error("saved sessions unusable: accounting starts empty (each session's first announce starts it afresh)", zap.Error(err))
	}
	return nil
}

// load restores the snapshot meta describes (see restore).
func (f *LocalFlusher) load(ctx context.Context, meta map[string]string, marker string) error {
	parts, err := strconv.Atoi(meta["parts"])
	if err != nil || parts < 0 || parts > 1<<16 {
		return fmt.Errorf("rewards: restore sessions: bad part count %q", meta["parts"])
	}
	snapSeq, _ := strconv.ParseInt(meta["seq"], 10, 64)
	raise := int64(0)
	if marker != "" {
		fs := strings.Fields(marker)
		if len(fs) != 3 {
			return fmt.Errorf("rewards: restore sessions: bad %s %q", KeyLocalFlushed, marker)
		}
		seq, err1 := strconv.ParseInt(fs[1], 10, 64)
		at, err2 := strconv.ParseInt(fs[2], 10, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("rewards: restore sessions: bad %s %q", KeyLocalFlushed, marker)
		}
		if fs[0] != meta["instance"] || seq > snapSeq {
			raise = at
		}
	}
	now := f.now().Unix()
	a := f.acct
	restored, sessions := 0, 0
	for i := 0; i < parts; i++ {
		b, err := f.rdb.Get(ctx, snapPartKey(meta["gen"], i)).Bytes()
		if err != nil {
			return fmt.Errorf("rewards: restore sessions: part %d of %s: %w", i, meta["gen"], err)
		}
		err = decodeRecords(b, func(k utKey, r *utRecord) {
			kept := r.sessions[:0]
			for _, s := range r.sessions {
				s.touched = min(s.touched, now) // a clock that ran ahead must not keep it forever
				if now-s.touched < a.sessionTTL {
					kept = append(kept, s)
				}
			}
			r.sessions = kept
			r.mark = max(r.mark, raise)
			if len(r.sessions) == 0 {
				return
			}
			sh := a.shardOf(k.user, &k.ih)
			sh.mu.Lock()
			if _, ok := sh.recs[k]; !ok {
				sh.recs[k] = r
				sh.live += len(r.sessions)
				restored++
				sessions += len(r.sessions)
			}
			sh.mu.Unlock()
		})
		if err != nil {
			return fmt.Errorf("rewards: restore sessions: part %d of %s: %w", i, meta["gen"], err)
		}
	}
	f.log.Info("sessions restored", zap.Int("records", restored), zap.Int("sessions", sessions),
		zap.String("snapshot", meta["gen"]), zap.Bool("after_crash", raise > 0), zap.Int64("marks_raised_to", raise))
	return nil
}

func ipText(ip [16]byte) string { return netip.AddrFrom16(ip).Unmap().String() }
