package api

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// The transparency page: static files embedded in the binary, no CDN, no
// external fonts. index.html is served at / and everything at /public/.
//
//go:embed web
var webFiles embed.FS

type webFile struct {
	body  []byte
	ctype string
	etag  string
}

// pageCSP lets the page load only its own files and call only its own API.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var webIndex = func() map[string]webFile {
	out := map[string]webFile{}
	err := fs.WalkDir(webFiles, "web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := webFiles.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ctype := "application/octet-stream"
		switch path.Ext(p) {
		case ".html":
			ctype = "text/html; charset=utf-8"
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		case ".css":
			ctype = "text/css; charset=utf-8"
		case ".svg":
			ctype = "image/svg+xml"
		}
		out[strings.TrimPrefix(p, "web/")] = webFile{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("api: embedded web files: " + err.Error())
	}
	return out
}()

func routePage(m *http.ServeMux, h func(http.HandlerFunc) http.Handler) {
	m.Handle("GET /{$}", h(func(w http.ResponseWriter, r *http.Request) { serveWeb(w, r, "index.html") }))
	m.Handle("GET /public/{file}", h(func(w http.ResponseWriter, r *http.Request) { serveWeb(w, r, r.PathValue("file")) }))
}

func serveWeb(w http.ResponseWriter, r *http.Request, name string) {
	f, ok := webIndex[name]
	if !ok {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.ctype)
	hd.Set("ETag", f.etag)
	hd.Set("Cache-Control", "public, max-age=300")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", pageCSP)
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
