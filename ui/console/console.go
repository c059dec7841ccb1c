// Package console serves the browser console.
package console

import (
	"net/http"

	"lintel/ui/api"
)

// New returns the console handler.
func New(a *api.API, svc api.Service, building, nodeID string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<!doctype html><title>Lintel</title><h1>Lintel</h1>"))
	})
}
