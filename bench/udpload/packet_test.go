package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
)

func TestAppendConnect(t *testing.T) {
	got := appendConnect(nil, 0xdeadbeef)
	want, _ := hex.DecodeString("0000041727101980" + "00000000" + "deadbeef")
	if !bytes.Equal(got, want) {
		t.Fatalf("connect = %x, want %x", got, want)
	}
}

func TestAppendAnnounceLayout(t *testing.T) {
	a := Announce{
		ConnID: 0x0102030405060708, TxID: 0x0a0b0c0d,
		InfoHash: [20]byte{1, 2, 3}, PeerID: PeerID("-BU0001-", 42, 7),
		Downloaded: 11, Left: 22, Uploaded: 33, Event: eventStarted,
		Key: 0x55667788, NumWant: 30, Port: 6881,
	}
	p := appendAnnounce(nil, &a, nil)
	if len(p) != announceLen {
		t.Fatalf("len = %d, want %d", len(p), announceLen)
	}
	be := binary.BigEndian
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"connection id", be.Uint64(p[0:]), a.ConnID},
		{"action", uint64(be.Uint32(p[8:])), actionAnnounce},
		{"transaction id", uint64(be.Uint32(p[12:])), uint64(a.TxID)},
		{"downloaded", be.Uint64(p[56:]), 11},
		{"left", be.Uint64(p[64:]), 22},
		{"uploaded", be.Uint64(p[72:]), 33},
		{"event", uint64(be.Uint32(p[80:])), eventStarted},
		{"ip", uint64(be.Uint32(p[84:])), 0},
		{"key", uint64(be.Uint32(p[88:])), 0x55667788},
		{"num_want", uint64(be.Uint32(p[92:])), 30},
		{"port", uint64(be.Uint16(p[96:])), 6881},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if !bytes.Equal(p[16:36], a.InfoHash[:]) {
		t.Errorf("info_hash = %x", p[16:36])
	}
	if string(p[36:56]) != "-BU0001-b0eb0258e74f" {
		t.Errorf("peer_id = %q", p[36:56])
	}
}

func TestAnnounceWithPasskeyOption(t *testing.T) {
	a := Announce{TxID: 1}
	opts := urlDataOption("/abcdef")
	p := appendAnnounce(nil, &a, opts)
	want := append([]byte{2, 7}, "/abcdef"...)
	want = append(want, 0)
	if !bytes.Equal(p[announceLen:], want) {
		t.Fatalf("options = %x, want %x", p[announceLen:], want)
	}
}

func TestURLDataOption(t *testing.T) {
	if got := urlDataOption(""); got != nil {
		t.Fatalf("empty path gives %x, want no options", got)
	}
	long := "/" + strings.Repeat("k", 299) // 300 bytes: 255 + 45
	got := urlDataOption(long)
	if got[0] != 2 || got[1] != 255 || got[2+255] != 2 || got[3+255] != 45 || got[len(got)-1] != 0 {
		t.Fatalf("long path split wrong: % x", got[:4])
	}
	if len(got) != 2+255+2+45+1 {
		t.Fatalf("len = %d", len(got))
	}
	if string(got[2:257])+string(got[259:304]) != long {
		t.Fatal("long path not carried whole")
	}
}

func TestAppendScrape(t *testing.T) {
	hs := [][20]byte{{1}, {2}}
	p := appendScrape(nil, 7, 9, hs, urlDataOption("/pk"))
	if binary.BigEndian.Uint64(p) != 7 || binary.BigEndian.Uint32(p[8:]) != actionScrape || binary.BigEndian.Uint32(p[12:]) != 9 {
		t.Fatalf("header = %x", p[:16])
	}
	if p[16] != 1 || p[36] != 2 || len(p) != 16+40+2+3+1 {
		t.Fatalf("body = %x", p[16:])
	}
	if binaryTx(p) != 9 {
		t.Fatalf("binaryTx = %d", binaryTx(p))
	}
}

func reply(action, tx uint32, body ...[]byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, action)
	b = binary.BigEndian.AppendUint32(b, tx)
	for _, x := range body {
		b = append(b, x...)
	}
	return b
}

func u32(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

func TestParseReply(t *testing.T) {
	r, err := parseReply(reply(actionConnect, 5, binary.BigEndian.AppendUint64(nil, 0xabc)), false)
	if err != nil || r.ConnID != 0xabc || r.TxID != 5 {
		t.Fatalf("connect: %+v %v", r, err)
	}
	r, err = parseReply(reply(actionAnnounce, 6, u32(1800, 3, 4), make([]byte, 6*5)), false)
	if err != nil || r.Interval != 1800 || r.Leechers != 3 || r.Seeders != 4 || r.Peers != 5 {
		t.Fatalf("announce v4: %+v %v", r, err)
	}
	r, err = parseReply(reply(actionAnnounce, 6, u32(1800, 3, 4), make([]byte, 18*2)), true)
	if err != nil || r.Peers != 2 {
		t.Fatalf("announce v6: %+v %v", r, err)
	}
	if _, err = parseReply(reply(actionAnnounce, 6, u32(1800, 3, 4), make([]byte, 7)), false); err == nil {
		t.Fatal("7 peer bytes accepted")
	}
	r, err = parseReply(reply(actionScrape, 7, u32(10, 1, 2), u32(20, 1, 3)), false)
	if err != nil || r.Files != 2 || r.Seeders != 30 || r.Leechers != 5 {
		t.Fatalf("scrape: %+v %v", r, err)
	}
	r, err = parseReply(reply(actionError, 8, []byte("bad connection id")), false)
	if err != nil || r.Message != "bad connection id" || !isConnIDError(r.Message) {
		t.Fatalf("error: %+v %v", r, err)
	}
	if _, err = parseReply([]byte{0, 0, 0}, false); err == nil {
		t.Fatal("short packet accepted")
	}
	if _, err = parseReply(reply(actionConnect, 1, []byte{1, 2}), false); err == nil {
		t.Fatal("short connect accepted")
	}
	if _, err = parseReply(reply(9, 1), false); err == nil {
		t.Fatal("unknown action accepted")
	}
}
