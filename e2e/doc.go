// Package e2e holds end-to-end tests that run the seedpay tracker binary
// against real BitTorrent clients (aria2c, transmission-daemon and
// python3-libtorrent).
//
// The tests need root (they create network namespaces, veth pairs and a
// bridge of their own) and the client packages installed:
//
//	apt-get install aria2 transmission-daemon transmission-cli python3-libtorrent
//
// Run them with
//
//	go test ./e2e/... -v
//
// TestMain builds ./cmd/seedpay once into a temporary directory; set
// SEEDPAY_E2E_BIN to an existing binary to skip the build. Child process
// output (tracker and clients) is logged when a test fails, or always with
// SEEDPAY_E2E_LOGS=1. All traffic stays on loopback or inside the network
// namespaces the tests create and delete (10.99.X.0/24 on a bridge of their
// own); namespaces left by a run that was killed are swept at the next start.
package e2e
