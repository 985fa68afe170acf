package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// The fuzzers drive the pure decoder and the whole handler, on a private
// redis-server, with the same body. Invalid bodies never reach Redis, so
// most executions are cheap; valid ones are really written.
// Seed corpora: testdata/fuzz/<FuzzName>/.

func FuzzCreateUser(f *testing.F) {
	e := newEnv(f, quiet())
	f.Fuzz(func(t *testing.T, body []byte) {
		req, aerr := decodeCreateUser(bytes.NewReader(body))
		checkDecodeError(t, aerr)
		if aerr == nil {
			checkName(t, req.Name, MaxUserNameLen)
		}

		rec := serveBody(e, "/api/v1/users", body)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.String())
		}
		if aerr != nil {
			checkSameError(t, rec, aerr, body)
			return
		}
		if rec.Code != http.StatusCreated {
			t.Fatalf("decoder accepted %q but handler said %d: %s", body, rec.Code, rec.Body.String())
		}
		u := decodeBody[userJSON](t, rec)
		if u.Name != req.Name {
			t.Fatalf("name %q came back as %q", req.Name, u.Name)
		}
		stored, err := e.store.User(context.Background(), u.ID)
		if err != nil || stored.Name != req.Name || stored.Passkey != u.Passkey {
			t.Fatalf("stored %+v, %v; API said %+v", stored, err, u)
		}
	})
}

func FuzzCreateTorrent(f *testing.F) {
	e := newEnv(f, quiet())
	f.Fuzz(func(t *testing.T, body []byte) {
		req, aerr := decodeCreateTorrent(bytes.NewReader(body))
		checkDecodeError(t, aerr)
		if aerr == nil {
			checkName(t, req.Name, MaxTorrentNameLen)
			if req.Size <= 0 {
				t.Fatalf("accepted size %d", req.Size)
			}
		}

		rec := serveBody(e, "/api/v1/torrents", body)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.String())
		}
		if aerr != nil {
			checkSameError(t, rec, aerr, body)
			return
		}
		switch rec.Code {
		case http.StatusConflict: // the same info_hash came up before
			return
		case http.StatusCreated:
		default:
			t.Fatalf("decoder accepted %q but handler said %d: %s", body, rec.Code, rec.Body.String())
		}
		got := decodeBody[torrentJSON](t, rec)
		if got.InfoHash != req.InfoHash.String() || got.InfoHash != strings.ToLower(got.InfoHash) ||
			got.Name != req.Name || got.Size != req.Size {
			t.Fatalf("request %+v answered %+v", req, got)
		}
		stored, err := e.store.Torrent(context.Background(), req.InfoHash)
		if err != nil || stored.Name != req.Name || stored.Size != req.Size {
			t.Fatalf("stored %+v, %v; API said %+v", stored, err, got)
		}
	})
}

func serveBody(e *env, path string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", path, bytes.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, r)
	return rec
}

func checkDecodeError(t *testing.T, aerr *apiError) {
	t.Helper()
	if aerr == nil {
		return
	}
	if aerr.status != http.StatusBadRequest && aerr.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("decode error status %d: %s", aerr.status, aerr.msg)
	}
	if aerr.msg == "" || !utf8.ValidString(aerr.msg) || len(aerr.msg) > 400 {
		t.Fatalf("bad error message %q", aerr.msg)
	}
}

func checkName(t *testing.T, name string, max int) {
	t.Helper()
	if strings.TrimSpace(name) == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > max {
		t.Fatalf("accepted name %q", name)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			t.Fatalf("accepted name %q with %U", name, r)
		}
	}
}

// checkSameError: the handler reports what the decoder found, except that a
// body over the limit may be cut short into a 413.
func checkSameError(t *testing.T, rec *httptest.ResponseRecorder, aerr *apiError, body []byte) {
	t.Helper()
	if len(body) > MaxBodyBytes && rec.Code == http.StatusRequestEntityTooLarge {
		return
	}
	if rec.Code != aerr.status {
		t.Fatalf("handler %d, decoder %d (%s) for %q", rec.Code, aerr.status, aerr.msg, body)
	}
	var eb errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error != aerr.msg {
		t.Fatalf("handler said %q, decoder %q", rec.Body.String(), aerr.msg)
	}
}
