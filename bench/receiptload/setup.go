package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/seedpay/seedpay/receipts"
)

// user is one benchmark account with its receipt key and announce address.
type user struct {
	id, passkey string
	key         ed25519.PrivateKey
	ip          net.IP
	n           int   // its index: peer id, port and address
	left        int64 // 0: a seeder (the uploaders)
}

// env is what setup created.
type env struct {
	o           options
	client      *http.Client // receipts and the admin API
	infoHash    [20]byte
	uploaders   []user
	downloaders []user
}

func (e *env) keys() (up, down []ed25519.PrivateKey) {
	for _, u := range e.uploaders {
		up = append(up, u.key)
	}
	for _, u := range e.downloaders {
		down = append(down, u.key)
	}
	return up, down
}

func (e *env) passkeys() []string {
	p := make([]string, len(e.uploaders))
	for i, u := range e.uploaders {
		p[i] = u.passkey
	}
	return p
}

// userIP is the loopback address user n announces from: 127.77.x.y, a
// different one for every user, so no two users share an IP.
func userIP(n int) net.IP {
	return net.IPv4(127, 77, byte(n/250), byte(n%250+1))
}

func newClient(timeout time.Duration, conns int, local net.IP) *http.Client {
	d := &net.Dialer{Timeout: timeout}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		Proxy:               nil, // loopback only, never through a proxy
		DialContext:         d.DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
	}}
}

// setup registers the torrent, the users and their keys, and makes every
// user announce the torrent from its own address.
func setup(ctx context.Context, o options, logf func(string, ...any)) (*env, error) {
	e := &env{o: o, client: newClient(o.timeout, o.uploaders+4, nil)}
	var tag [6]byte
	rand.Read(tag[:])
	name := "receiptload-" + hex.EncodeToString(tag[:])
	e.infoHash = sha1.Sum([]byte("seedpay-" + name))
	var tj struct {
		InfoHash string `json:"info_hash"`
	}
	if err := e.admin(ctx, "/api/v1/torrents", map[string]any{"info_hash": hex.EncodeToString(e.infoHash[:]), "name": name, "size": o.size}, &tj); err != nil {
		return nil, fmt.Errorf("register torrent: %w", err)
	}
	for n := range o.uploaders + o.downloaders {
		role, i := "up", n
		if n >= o.uploaders {
			role, i = "down", n-o.uploaders
		}
		u, err := e.newUser(ctx, fmt.Sprintf("%s-%s%d", name, role, i), userIP(n))
		if err != nil {
			return nil, err
		}
		u.n = n
		if role == "down" {
			u.left = o.size
		}
		if err := e.announce(ctx, u, "started"); err != nil {
			return nil, fmt.Errorf("announce of %s from %s: %w", u.id, u.ip, err)
		}
		if role == "up" {
			e.uploaders = append(e.uploaders, u)
		} else {
			e.downloaders = append(e.downloaders, u)
		}
	}
	logf("torrent %x (size %d), uploaders from %s.., downloaders from %s..", e.infoHash, o.size, userIP(0), userIP(o.uploaders))
	return e, nil
}

func (e *env) newUser(ctx context.Context, name string, ip net.IP) (user, error) {
	var uj struct {
		ID      string `json:"id"`
		Passkey string `json:"passkey"`
	}
	if err := e.admin(ctx, "/api/v1/users", map[string]string{"name": name}, &uj); err != nil {
		return user{}, fmt.Errorf("create user: %w", err)
	}
	if uj.ID == "" || uj.Passkey == "" {
		return user{}, fmt.Errorf("create user: no id or passkey in the reply")
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return user{}, err
	}
	if err := e.admin(ctx, "/api/v1/users/"+uj.ID+"/keys", map[string]string{"key": hex.EncodeToString(pub)}, nil); err != nil {
		return user{}, fmt.Errorf("register key of %s: %w", uj.ID, err)
	}
	return user{id: uj.ID, passkey: uj.Passkey, key: key, ip: ip}, nil
}

// admin POSTs a JSON body to the admin API and wants 201 Created.
func (e *env) admin(ctx context.Context, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(e.o.api, "/")+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+e.o.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, bytes.TrimSpace(reply))
	}
	if out != nil {
		return json.Unmarshal(reply, out)
	}
	return nil
}

// announce sends one HTTP announce (numwant 0, event if not "") for user u
// from u.ip.
func (e *env) announce(ctx context.Context, u user, event string) error {
	var peerID [20]byte
	copy(peerID[:], fmt.Sprintf("-RL0001-%012d", u.n))
	q := "info_hash=" + url.QueryEscape(string(e.infoHash[:])) + "&peer_id=" + url.QueryEscape(string(peerID[:])) +
		"&port=" + strconv.Itoa(6881+u.n) + "&uploaded=0&downloaded=0&left=" + strconv.FormatInt(u.left, 10) +
		"&compact=1&numwant=0"
	if event != "" {
		q += "&event=" + event
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(e.o.target, "/")+"/announce/"+u.passkey+"?"+q, nil)
	if err != nil {
		return err
	}
	c := newClient(e.o.timeout, 1, u.ip)
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK || bytes.Contains(reply, []byte("failure reason")) {
		return fmt.Errorf("%s: %q", resp.Status, reply)
	}
	return nil
}

// probe submits, for every uploader, one receipt from every downloader in
// fresh sessions, resubmitting the ones rejected as not_announced until all
// are accepted (the accounting flush records announces about once a
// second). Any other rejection fails the run before it starts. Every second
// of waiting the users concerned announce again: a tracker whose accounting
// buffers are full (just after the benchmark's warm-up) drops announce
// events, and a dropped one is never recorded.
func (e *env) probe(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for u, up := range e.uploaders {
		var pub [32]byte
		copy(pub[:], up.key.Public().(ed25519.PublicKey))
		var pending []receipts.Receipt
		var owner []int // pending[i] is signed by e.downloaders[owner[i]]
		for i, d := range e.downloaders {
			r, err := receipts.NewIssuer(d.key, e.infoHash, pub).Receipt(1, time.Now())
			if err != nil {
				return err
			}
			pending = append(pending, r)
			owner = append(owner, i)
		}
		reannounced := time.Now()
		for len(pending) > 0 {
			res, status, err := post(ctx, e.client, e.o.target, up.passkey, receipts.EncodeBatch(pending))
			if err != nil || status != http.StatusOK {
				return fmt.Errorf("uploader %d: status %d: %v", u, status, err)
			}
			var again []receipts.Receipt
			var downs []int
			for i, r := range res.Results {
				switch {
				case r.Status == "accepted":
				case r.Reason == "not_announced":
					again = append(again, pending[i])
					downs = append(downs, owner[i])
				default:
					return fmt.Errorf("uploader %d: probe receipt rejected: %s", u, r.Reason)
				}
			}
			if len(res.Results) != len(pending) {
				return fmt.Errorf("uploader %d: %d results for %d receipts", u, len(res.Results), len(pending))
			}
			pending, owner = again, downs
			if len(pending) > 0 {
				if time.Since(reannounced) >= time.Second {
					reannounced = time.Now()
					for _, who := range append([]user{up}, pick(e.downloaders, downs)...) {
						if err := e.announce(ctx, who, ""); err != nil {
							return fmt.Errorf("announce again of %s: %w", who.id, err)
						}
					}
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("uploader %d: %d receipts still not_announced after %s (is rewards accounting on?)", u, len(pending), timeout)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
	}
	return nil
}

func pick(us []user, idx []int) []user {
	out := make([]user, len(idx))
	for i, j := range idx {
		out[i] = us[j]
	}
	return out
}
