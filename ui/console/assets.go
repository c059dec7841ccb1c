package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"time"
)

//go:embed assets/console.css assets/vendor/*.js
var assetFiles embed.FS

// asset is one embedded file, served at a URL that carries its hash so a
// new version is never served from a cache.
type asset struct {
	name, kind string
	body       []byte
	tag        string
}

func loadAsset(name, kind string) asset {
	b, err := assetFiles.ReadFile("assets/" + name)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(b)
	return asset{name: name, kind: kind, body: b, tag: hex.EncodeToString(sum[:])}
}

func (a asset) path() string { return "/assets/" + a.name + "?v=" + a.tag[:12] }

var (
	cssAsset  = loadAsset("console.css", "text/css; charset=utf-8")
	htmxAsset = loadAsset("vendor/htmx-2.0.11.min.js", "text/javascript; charset=utf-8")
	wsAsset   = loadAsset("vendor/htmx-ext-ws-2.0.4.min.js", "text/javascript; charset=utf-8")
	assets    = map[string]asset{cssAsset.name: cssAsset, htmxAsset.name: htmxAsset, wsAsset.name: wsAsset}
	assetPath = cssAsset.path()
)

func (c *Console) asset(w http.ResponseWriter, r *http.Request) {
	a, ok := assets[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.kind)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Header().Set("ETag", `"`+a.tag+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
