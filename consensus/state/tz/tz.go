// Package tz loads time zones from the tz database embedded in the binary,
// never from the host: the state machine decides with them, and two nodes
// with different zoneinfo files must still decide alike. See DESIGN.md.
package tz

import (
	"archive/zip"
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// zoneinfo is a copy of Go's lib/time/zoneinfo.zip (tzdata 2025c).
//
//go:embed zoneinfo.zip
var zoneinfo []byte

var (
	indexOnce sync.Once
	index     map[string]*zip.File
	indexErr  error

	// loaded caches name → *time.Location; only names found in the
	// archive are stored, so it stays as small as the database.
	loaded sync.Map
)

func readIndex() {
	r, err := zip.NewReader(bytes.NewReader(zoneinfo), int64(len(zoneinfo)))
	if err != nil {
		indexErr = fmt.Errorf("embedded tz database: %w", err)
		return
	}
	index = make(map[string]*zip.File, len(r.File))
	for _, f := range r.File {
		index[f.Name] = f
	}
}

// Load returns the time zone of an IANA name, such as Europe/Paris, from the
// embedded database. "UTC" is time.UTC. "", "Local" (the host's zone) and
// paths are refused, as is any name the database does not hold.
func Load(name string) (*time.Location, error) {
	if name == "UTC" {
		return time.UTC, nil
	}
	if l, ok := loaded.Load(name); ok {
		return l.(*time.Location), nil
	}
	if name == "" || name == "Local" || strings.Contains(name, "..") ||
		strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`) {
		return nil, unknown(name)
	}
	indexOnce.Do(readIndex)
	if indexErr != nil {
		return nil, indexErr
	}
	f, ok := index[name]
	if !ok || f.FileInfo().IsDir() {
		return nil, unknown(name)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("embedded tz database: %s: %w", name, err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("embedded tz database: %s: %w", name, err)
	}
	loc, err := time.LoadLocationFromTZData(name, data)
	if err != nil {
		return nil, fmt.Errorf("embedded tz database: %s: %w", name, err)
	}
	// Two callers may race to load a name; both get the one stored.
	l, _ := loaded.LoadOrStore(name, loc)
	return l.(*time.Location), nil
}

func unknown(name string) error {
	return fmt.Errorf("unknown time zone %q: use an IANA name such as Europe/Paris", name)
}
