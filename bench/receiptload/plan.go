package main

import (
	"crypto/ed25519"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/seedpay/seedpay/receipts"
)

// batch is one POST: binary receipts all naming the same uploader.
type batch struct {
	uploader int // index into the uploaders
	n        int // receipts in body
	body     []byte
}

// plan is every batch of a run, signed in advance, in the order they are
// sent: batch g belongs to uploader g % len(uploaders).
type plan struct {
	batches  []batch
	receipts int
}

// newPlan signs total receipts of torrent ih in batches of size (the last
// may be shorter). Every downloader keeps one session (one Issuer) per
// uploader; an uploader's batches cycle through its downloaders, and each
// receipt adds step bytes to its session's cumulative count, so the counts
// grow across an uploader's batches in send order. Receipts carry the time
// now.
func newPlan(up, down []ed25519.PrivateKey, ih [20]byte, total, size int, step uint64, now time.Time) (*plan, error) {
	if len(up) == 0 || len(down) == 0 || total < 1 || size < 1 || step < 1 {
		return nil, fmt.Errorf("plan: need uploaders, downloaders, receipts, batch size and step (got %d, %d, %d, %d, %d)",
			len(up), len(down), total, size, step)
	}
	nb := (total + size - 1) / size
	p := &plan{batches: make([]batch, nb), receipts: total}
	for g := range p.batches {
		p.batches[g] = batch{uploader: g % len(up), n: min(size, total-g*size)}
	}
	// Uploaders are independent: sign their batches in parallel.
	errs := make([]error, len(up))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for u := range up {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[u] = p.signUploader(u, len(up), up[u].Public().(ed25519.PublicKey), down, ih, step, now)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// signUploader fills the bodies of uploader u's batches (g = u, u+U, ...).
func (p *plan) signUploader(u, nUp int, upPub ed25519.PublicKey, down []ed25519.PrivateKey, ih [20]byte, step uint64, now time.Time) error {
	var pub [32]byte
	copy(pub[:], upPub)
	issuers := make([]*receipts.Issuer, len(down))
	for d := range down {
		issuers[d] = receipts.NewIssuer(down[d], ih, pub)
	}
	cum := make([]uint64, len(down))
	idx := 0 // receipts of this uploader so far
	for g := u; g < len(p.batches); g += nUp {
		b := &p.batches[g]
		rs := make([]receipts.Receipt, b.n)
		for j := range rs {
			d := idx % len(down)
			idx++
			cum[d] += step
			r, err := issuers[d].Receipt(cum[d], now)
			if err != nil {
				return fmt.Errorf("plan: uploader %d, downloader %d: %w", u, d, err)
			}
			rs[j] = r
		}
		b.body = receipts.EncodeBatch(rs)
	}
	return nil
}
