package main

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// BEP 15 actions.
const (
	actionConnect  = 0
	actionAnnounce = 1
	actionScrape   = 2
	actionError    = 3
)

// BEP 15 announce events.
const (
	eventNone      = 0
	eventCompleted = 1
	eventStarted   = 2
	eventStopped   = 3
)

// protocolID is the magic connection id of a connect request.
const protocolID uint64 = 0x41727101980

// announceLen is the size of a BEP 15 announce request without options.
const announceLen = 98

// Announce is one BEP 15 announce request.
type Announce struct {
	ConnID     uint64
	TxID       uint32
	InfoHash   [20]byte
	PeerID     [20]byte
	Downloaded uint64
	Left       uint64
	Uploaded   uint64
	Event      uint32
	Key        uint32
	NumWant    uint32
	Port       uint16
}

// appendConnect appends a connect request.
func appendConnect(b []byte, txID uint32) []byte {
	b = binary.BigEndian.AppendUint64(b, protocolID)
	b = binary.BigEndian.AppendUint32(b, actionConnect)
	return binary.BigEndian.AppendUint32(b, txID)
}

// appendAnnounce appends an announce request (IP field 0: the source
// address counts) followed by the URL data options in opts.
func appendAnnounce(b []byte, a *Announce, opts []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, a.ConnID)
	b = binary.BigEndian.AppendUint32(b, actionAnnounce)
	b = binary.BigEndian.AppendUint32(b, a.TxID)
	b = append(b, a.InfoHash[:]...)
	b = append(b, a.PeerID[:]...)
	b = binary.BigEndian.AppendUint64(b, a.Downloaded)
	b = binary.BigEndian.AppendUint64(b, a.Left)
	b = binary.BigEndian.AppendUint64(b, a.Uploaded)
	b = binary.BigEndian.AppendUint32(b, a.Event)
	b = binary.BigEndian.AppendUint32(b, 0) // IP: use the source address
	b = binary.BigEndian.AppendUint32(b, a.Key)
	b = binary.BigEndian.AppendUint32(b, a.NumWant)
	b = binary.BigEndian.AppendUint16(b, a.Port)
	return append(b, opts...)
}

// appendScrape appends a scrape request for hashes followed by opts.
func appendScrape(b []byte, connID uint64, txID uint32, hashes [][20]byte, opts []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, connID)
	b = binary.BigEndian.AppendUint32(b, actionScrape)
	b = binary.BigEndian.AppendUint32(b, txID)
	for i := range hashes {
		b = append(b, hashes[i][:]...)
	}
	return append(b, opts...)
}

// urlDataOption returns the BEP 41 option list carrying path (for a private
// tracker "/<passkey>"): option 2 with a length byte, split into several
// options when longer than 255 bytes, then end-of-options. An empty path
// gives no options at all.
func urlDataOption(path string) []byte {
	if path == "" {
		return nil
	}
	var b []byte
	for len(path) > 0 {
		n := min(len(path), 255)
		b = append(b, 2, byte(n))
		b = append(b, path[:n]...)
		path = path[n:]
	}
	return append(b, 0)
}

// Reply is a parsed server packet. Peers counts the compact peers of an
// announce reply (6 bytes each for IPv4, 18 for IPv6).
type Reply struct {
	Action   uint32
	TxID     uint32
	ConnID   uint64 // connect
	Interval uint32 // announce
	Leechers uint32 // announce; scrape: sum over the entries
	Seeders  uint32 // announce; scrape: sum over the entries
	Peers    int    // announce
	Files    int    // scrape: entries of 12 bytes
	Message  string // error
}

var errShortReply = errors.New("short reply")

// parseReply decodes a server packet; v6 tells the compact peer size.
func parseReply(p []byte, v6 bool) (Reply, error) {
	if len(p) < 8 {
		return Reply{}, errShortReply
	}
	r := Reply{Action: binary.BigEndian.Uint32(p[0:4]), TxID: binary.BigEndian.Uint32(p[4:8])}
	body := p[8:]
	switch r.Action {
	case actionConnect:
		if len(body) < 8 {
			return r, errShortReply
		}
		r.ConnID = binary.BigEndian.Uint64(body)
	case actionAnnounce:
		if len(body) < 12 {
			return r, errShortReply
		}
		r.Interval = binary.BigEndian.Uint32(body[0:4])
		r.Leechers = binary.BigEndian.Uint32(body[4:8])
		r.Seeders = binary.BigEndian.Uint32(body[8:12])
		size := 6
		if v6 {
			size = 18
		}
		peers := body[12:]
		if len(peers)%size != 0 {
			return r, fmt.Errorf("announce reply: %d peer bytes are not a multiple of %d", len(peers), size)
		}
		r.Peers = len(peers) / size
	case actionScrape:
		if len(body)%12 != 0 {
			return r, fmt.Errorf("scrape reply: %d bytes are not a multiple of 12", len(body))
		}
		r.Files = len(body) / 12
		for k := 0; k+12 <= len(body); k += 12 {
			r.Seeders += binary.BigEndian.Uint32(body[k:])
			r.Leechers += binary.BigEndian.Uint32(body[k+8:])
		}
	case actionError:
		r.Message = string(body)
	default:
		return r, fmt.Errorf("unknown action %d", r.Action)
	}
	return r, nil
}
