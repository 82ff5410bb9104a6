package greenapi

import (
	"bytes"
	"embed"
	"net/http"
	"path"
	"time"
)

// The browsable reference at /docs: one page and its script, embedded,
// which render /openapi.json (no CDN, no framework).

//go:embed apidocs
var apiDocsFS embed.FS

// apiDocs serves /docs and /docs/{file}.
func apiDocs() http.Handler {
	types := map[string]string{".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		if name == "" {
			name = "index.html"
		}
		b, err := apiDocsFS.ReadFile("apidocs/" + path.Base(name))
		ct, ok := types[path.Ext(name)]
		if err != nil || !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", ct)
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	})
}
