// Package peer carries seedpay's signed upload receipts between BitTorrent
// peers and from the uploader to the tracker: the seedpay_receipt BEP 10
// extension, the downloader's signing schedule, the uploader's Collector,
// and the Submitter that posts receipts to POST /receipts/<passkey>. It is
// engine-neutral: the BitTorrent engine (anacrolix/torrent in the reference
// client, `seedpay client`) feeds it messages and byte counts.
//
// # The extension
//
// A peer that speaks it lists "seedpay_receipt" in the "m" dictionary of
// its BEP 10 extended handshake. Each message of the extension is a
// bencoded dictionary (at most 1024 bytes) with an integer "msg_type":
//
//	0 hello    {"key": <32-byte ed25519 public key>, "msg_type": 0, "v": 1}
//	1 receipt  {"msg_type": 1, "receipt": <173-byte receipt, docs/receipts.md>}
//
// Each side sends one hello as soon as it has read the peer's extended
// handshake and seen the extension listed. (The key travels in the
// extension's own first message rather than in the extended handshake:
// common engines build that dictionary themselves and do not let an
// extension add keys to it.) A receiver ignores unknown dictionary keys
// and unknown msg_type values, so later versions can add both.
//
// As a downloader, a peer counts the piece bytes it received and wanted
// (not duplicates) over every connection whose peer said key K, per
// torrent, and sends K a receipt for the running total: one
// receipts.Issuer, hence one random session, per (torrent, K) for the life
// of the client, cumulative over reconnections. It signs every
// Config.ReceiptEvery bytes of growth and at least every
// Config.ReceiptInterval while the count grows, and once more when it
// shuts down (Flush). A receipt goes to the uploader over any of its open
// connections; one signed while none is open waits for the next.
//
// As an uploader, a peer verifies each receipt it gets (signature, made out
// to its own key, for the connection's torrent) and keeps the newest per
// (torrent, downloader, session) in its Collector; the Submitter posts the
// ones the tracker has not answered yet, as binary batches, and records
// each answer. Because counts are cumulative, a lost receipt costs nothing
// once a later one arrives, and submitting one twice earns nothing twice.
//
// A peer cannot prove in the handshake that it holds the key it names: it
// gains nothing by naming another's key, since receipts for that key are
// paid to that key's owner, and only work the downloader really received
// is signed.
package peer
