package main

import (
	"fmt"
	"io"
	"net"
	"time"
)

// censusChunk is the info hashes per scrape: trackers cap a scrape (seedpay
// and chihaya at 50 by default).
const censusChunk = 50

// census scrapes every torrent of the model once, one request at a time on
// one socket, and sums seeders and leechers: how many peers the tracker
// holds. Each scrape gets up to 3 tries.
func census(o options, raddr *net.UDPAddr, w io.Writer) error {
	conn, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return err
	}
	defer conn.Close()
	v6 := raddr.IP.To4() == nil
	var opts []byte
	if o.passkey != "" {
		opts = urlDataOption("/" + o.passkey)
	}
	buf := make([]byte, 4096)
	var tx uint32
	// ask sends p (built for transaction id tx) and waits for its reply.
	ask := func(build func(tx uint32) []byte) (Reply, error) {
		for try := 0; try < 3; try++ {
			tx++
			if _, err := conn.Write(build(tx)); err != nil {
				return Reply{}, err
			}
			_ = conn.SetReadDeadline(time.Now().Add(o.timeout))
			for {
				n, err := conn.Read(buf)
				if err != nil {
					if isTimeout(err) {
						break
					}
					return Reply{}, err
				}
				r, err := parseReply(buf[:n], v6)
				if r.TxID != tx {
					continue
				}
				return r, err
			}
		}
		return Reply{}, fmt.Errorf("no reply from %s after 3 tries", raddr)
	}
	r, err := ask(func(tx uint32) []byte { return appendConnect(nil, tx) })
	if err != nil {
		return err
	}
	if r.Action != actionConnect {
		return fmt.Errorf("connect: %q", r.Message)
	}
	connID := r.ConnID
	var seeders, leechers uint64
	hashes := make([][20]byte, 0, censusChunk)
	for first := 0; first < o.model.Torrents; first += censusChunk {
		hashes = hashes[:0]
		for i := first; i < min(first+censusChunk, o.model.Torrents); i++ {
			hashes = append(hashes, InfoHash(i))
		}
		r, err := ask(func(tx uint32) []byte { return appendScrape(nil, connID, tx, hashes, opts) })
		if err != nil {
			return err
		}
		if r.Action != actionScrape || r.Files != len(hashes) {
			return fmt.Errorf("scrape of torrents %d..%d: action %d, %d entries, %q", first, first+len(hashes)-1, r.Action, r.Files, r.Message)
		}
		seeders += uint64(r.Seeders)
		leechers += uint64(r.Leechers)
	}
	fmt.Fprintf(w, "udpload: %s holds %d peers (%d seeders, %d leechers) in %d torrents\n",
		raddr, seeders+leechers, seeders, leechers, o.model.Torrents)
	fmt.Fprintf(w, "RESULT swarm_peers=%d seeders=%d leechers=%d\n", seeders+leechers, seeders, leechers)
	return nil
}
