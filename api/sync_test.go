package api

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/seedpay/seedpay/middleware/registry"
)

// TestMutationsReachTheAnnounceCacheBeforeTheReply: no reload and no
// pub/sub follower runs here, so only the API's own sync can make these
// visible to the announce path.
func TestMutationsReachTheAnnounceCacheBeforeTheReply(t *testing.T) {
	e := newEnv(t, quiet())
	rec := e.do(http.MethodPost, "/api/v1/users", `{"name":"alice"}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("create user: %d %s", rec.Code, rec.Body)
	}
	var u userJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &u); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.cache.UserByPasskey(u.Passkey); !ok {
		t.Fatal("new user's passkey refused right after 201")
	}

	rec = e.do(http.MethodPost, "/api/v1/users/"+u.ID+"/passkey", "")
	var rotated userJSON
	_ = json.Unmarshal(rec.Body.Bytes(), &rotated)
	if _, ok := e.cache.UserByPasskey(u.Passkey); ok {
		t.Fatal("old passkey still accepted after rotation returned")
	}
	if _, ok := e.cache.UserByPasskey(rotated.Passkey); !ok {
		t.Fatal("rotated passkey refused right after 200")
	}

	e.do(http.MethodPost, "/api/v1/users/"+u.ID+"/ban", "")
	if got, _ := e.cache.UserByPasskey(rotated.Passkey); !got.Banned {
		t.Fatal("ban not in the cache when the API answered")
	}

	const hexIH = "00112233445566778899aabbccddeeff00112233"
	ih, _ := registry.ParseInfoHash(hexIH)
	if rec := e.do(http.MethodPost, "/api/v1/torrents", `{"info_hash":"`+hexIH+`","size":5,"name":"t"}`); rec.Code != http.StatusCreated {
		t.Fatalf("create torrent: %d", rec.Code)
	}
	if _, ok := e.cache.Torrent(ih); !ok {
		t.Fatal("torrent unknown to announces right after 201")
	}
	e.do(http.MethodDelete, "/api/v1/torrents/"+hexIH, "")
	if _, ok := e.cache.Torrent(ih); ok {
		t.Fatal("deleted torrent still tracked after 204")
	}
}
