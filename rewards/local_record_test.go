package rewards

import (
	"testing"
	"unsafe"
)

// TestRecordInlineStorage: a record's first session and address are kept
// in the record itself (one allocation), a second one spills to the heap
// with both intact, and a snapshot restores a one-session record inline.
func TestRecordInlineStorage(t *testing.T) {
	a, err := NewLocalAccountant(acctConfig())
	if err != nil {
		t.Fatal(err)
	}
	ev := acctEv("alice", 1, 1, acT0, 0, 0, 0)
	ev.IP[15] = 7
	if out := a.Apply(&ev, acAllOpen, nil); out.Code != CodeNew {
		t.Fatalf("%+v", out)
	}
	k := utKey{"alice", ev.InfoHash}
	r := a.shardOf(k.user, &k.ih).recs[k]
	inline := func(r *utRecord) bool {
		return unsafe.SliceData(r.sessions) == &r.inlSessions[0]
	}
	if !inline(r) || unsafe.SliceData(r.ips) != &r.inlIPs[0] || len(r.ips) != 1 {
		t.Fatal("first session or address not stored in the record")
	}
	snap := appendRecord(nil, k, r)
	var restored *utRecord
	if err := decodeRecords(snap, func(_ utKey, r *utRecord) { restored = r }); err != nil {
		t.Fatal(err)
	}
	if restored == nil || !inline(restored) || restored.sessions[0].pid != r.sessions[0].pid {
		t.Fatalf("restored record %+v: not inline or not the same session", restored)
	}
	ev2 := acctEv("alice", 1, 2, acT0+1, 0, 0, 0)
	if out := a.Apply(&ev2, acAllOpen, nil); out.Code != CodeNew {
		t.Fatalf("%+v", out)
	}
	if inline(r) || len(r.sessions) != 2 || r.sessions[0].pid != ev.PeerID || r.sessions[1].pid != ev2.PeerID {
		t.Fatalf("second session: %+v", r.sessions)
	}
}
