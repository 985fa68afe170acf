package rewards

// Event is one announce as accounting sees it: fixed size, no pointers
// besides the user id, so buffering it costs no allocation per announce.
type Event struct {
	User       string   // registry user id
	InfoHash   [20]byte // torrent
	PeerID     [20]byte // client session
	Size       int64    // registered torrent size in bytes
	Seeders    uint32   // seeders in the swarm at this announce (rarity)
	Uploaded   uint64   // cumulative, as reported
	Downloaded uint64   // cumulative, as reported
	Left       uint64   // bytes left; 0 = seeding
	Stopped    bool     // the "stopped" event: the session ends here
	IP         [16]byte // the announcing address (IPv4 as ::ffff:a.b.c.d); zero: unknown
	Time       int64    // Unix seconds of the announce, by the tracker's clock
}
