package receipts_test

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/seedpay/seedpay/receipts"
)

// A downloader signs receipts for the bytes it received from one uploader; the
// uploader keeps the newest one and submits it; the tracker decodes and
// verifies it, then applies its policy.
func Example() {
	downloaderKey := ed25519.NewKeyFromSeed(make([]byte, 32)) // load the client's key instead
	uploaderPub := ed25519.NewKeyFromSeed([]byte("uploader seed for the example..!")).Public().(ed25519.PublicKey)
	infoHash := [20]byte{0x01, 0x23}

	// Downloader: one Issuer per (torrent, uploader) per session.
	issuer := receipts.NewIssuer(downloaderKey, infoHash, [32]byte(uploaderPub))
	r, err := issuer.Receipt(16<<20, time.Now())
	if err != nil {
		panic(err)
	}
	wire := r.Encode() // sent to the uploader over the peer connection

	// Uploader and tracker: decode, verify, then submit / credit.
	got, err := receipts.Decode(wire)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(wire), got.Verify(), got.Cumulative)
	// Output: 173 <nil> 16777216
}
