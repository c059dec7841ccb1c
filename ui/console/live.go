package console

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"lintel/consensus/state"
	"lintel/ui/api"
)

// Live connection limits. A browser that cannot keep up is dropped; the ws
// extension reconnects and the first message of a connection re-sends every
// live fragment of the page, so nothing stays stale.
const (
	livePending    = 4096             // changes waiting for one connection before it is dropped
	liveWriteWait  = 10 * time.Second // a write that takes longer drops the browser
	livePingEvery  = 25 * time.Second
	livePongWait   = 60 * time.Second
	liveReadLimit  = 4 << 10 // the console sends nothing; a big message is an attack
	livePerSession = 16      // tabs of one login
	liveMax        = 1024    // connections of the node
	liveRecheck    = time.Minute
	// liveMinGap spaces one connection's renders: the changes of a burst
	// are rendered together, at most 40 times a second.
	liveMinGap = 25 * time.Millisecond
)

// Hub fans the state's change events out to the live connections of this
// node's console. Publish is called after every applied batch and never blocks.
type Hub struct {
	mu      sync.Mutex
	clients map[*liveClient]struct{}
	// sent counts the messages written, for tests and metrics.
	sent atomic.Int64
	// lists is told of every batch first (the card lists' read model).
	lists     atomic.Pointer[listCache]
	done      chan struct{}
	closeOnce sync.Once
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{clients: map[*liveClient]struct{}{}, done: make(chan struct{})} }

// Close ends every live connection (the node is stopping: the HTTP server
// does not track the connections it handed over) and refuses new ones.
func (h *Hub) Close() {
	h.closeOnce.Do(func() { close(h.done) })
}

// Publish hands a batch of changes to every connection; a connection whose
// queue is full is closed (its browser reconnects and gets a fresh page).
func (h *Hub) Publish(changes []state.Change) {
	if h == nil || len(changes) == 0 {
		return
	}
	if lc := h.lists.Load(); lc != nil {
		lc.changed(changes)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for cl := range h.clients {
		if len(cl.pending)+len(changes) > livePending {
			cl.overflow = true
		} else {
			cl.pending = append(cl.pending, changes...)
		}
		select {
		case cl.wake <- struct{}{}:
		default:
		}
	}
}

// Connections tells how many browsers are connected.
func (h *Hub) Connections() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// Sent tells how many live messages were written to browsers.
func (h *Hub) Sent() int64 { return h.sent.Load() }

func (h *Hub) add(cl *liveClient) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.done:
		return false
	default:
	}
	if len(h.clients) >= liveMax {
		return false
	}
	n := 0
	for o := range h.clients {
		if o.session == cl.session {
			n++
		}
	}
	if n >= livePerSession {
		return false
	}
	h.clients[cl] = struct{}{}
	return true
}

func (h *Hub) remove(cl *liveClient) {
	h.mu.Lock()
	delete(h.clients, cl)
	h.mu.Unlock()
}

// take returns the changes waiting for cl and whether it fell behind.
func (h *Hub) take(cl *liveClient) ([]state.Change, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, over := cl.pending, cl.overflow
	cl.pending, cl.overflow = nil, false
	return ch, over
}

// liveClient is one browser tab's websocket.
type liveClient struct {
	session string // the session's token hash
	view    liveView
	area    string // the profile area the view needs ("" for the header only)
	wake    chan struct{}
	// pending and overflow are guarded by the hub's mutex.
	pending  []state.Change
	overflow bool
}

// liveView is the live part of one page: it writes the fragments (elements
// with ids, swapped in place by htmx) that a batch of changes touches; all of
// them when changes is nil (a new connection).
type liveView interface {
	fragments(ctx context.Context, p *api.Principal, changes []state.Change, w *bytes.Buffer) error
}

// touches reports whether any change is in one of the tables ("*" is a
// restore from a snapshot, which touches everything).
func touches(changes []state.Change, tables ...string) bool {
	if changes == nil {
		return true
	}
	for _, c := range changes {
		if c.Table == "*" {
			return true
		}
		for _, t := range tables {
			if c.Table == t {
				return true
			}
		}
	}
	return false
}

// sameOrigin is the upgrader's origin check: a page of another site must not
// open a socket with the operator's cookie (the upgrade is a GET, outside the
// cross-origin protection of the forms).
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host && (u.Scheme == "http" || u.Scheme == "https")
}

var upgrader = websocket.Upgrader{
	HandshakeTimeout: 5 * time.Second,
	ReadBufferSize:   1024,
	WriteBufferSize:  16 << 10,
	CheckOrigin:      sameOrigin,
}

// live serves /ws: the page names its view in the query (the same
// parameters as the page itself).
func (c *Console) live(w http.ResponseWriter, r *http.Request) {
	p, ok := c.api.Authenticate(r)
	if !ok {
		http.Error(w, "log in first", http.StatusUnauthorized)
		return
	}
	if !sameOrigin(r) {
		http.Error(w, "the live connection must come from this node's own pages", http.StatusForbidden)
		return
	}
	view, area, ok := c.viewFor(r.URL.Query(), p)
	if !ok {
		http.Error(w, "no live view of that name", http.StatusBadRequest)
		return
	}
	cl := &liveClient{session: p.TokenHash, view: view, area: area, wake: make(chan struct{}, 1)}
	if !c.hub.add(cl) {
		w.Header().Set("Retry-After", "30")
		http.Error(w, "too many live connections; close some tabs", http.StatusTooManyRequests)
		return
	}
	defer c.hub.remove(cl)
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	defer conn.Close()
	c.serveLive(conn, cl)
}

// serveLive is the connection's one writer; a reader goroutine only takes
// pongs and the close.
func (c *Console) serveLive(conn *websocket.Conn, cl *liveClient) {
	conn.SetReadLimit(liveReadLimit)
	conn.SetReadDeadline(time.Now().Add(livePongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(livePongWait)) })
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return
			}
		}
	}()
	ping := time.NewTicker(livePingEvery)
	defer ping.Stop()
	recheck := time.NewTicker(liveRecheck)
	defer recheck.Stop()
	var buf bytes.Buffer
	var lastWrite time.Time
	first := true
	for {
		var changes []state.Change
		if !first {
			select {
			case <-done:
				return
			case <-c.hub.done:
				conn.SetWriteDeadline(time.Now().Add(time.Second))
				conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "the node is stopping"))
				return
			case <-ping.C:
				conn.SetWriteDeadline(time.Now().Add(liveWriteWait))
				if conn.WriteMessage(websocket.PingMessage, nil) != nil {
					return
				}
				continue
			case <-recheck.C:
				changes = []state.Change{} // only the session check below
			case <-cl.wake:
				if d := time.Since(lastWrite); d < liveMinGap {
					time.Sleep(liveMinGap - d) // the burst's other changes join these
				}
				var over bool
				changes, over = c.hub.take(cl)
				if over {
					return // fell behind: the browser reconnects and gets everything anew
				}
			}
		}
		first = false
		// The session is checked again on every round: a logout, a
		// disabled operator or a lost right ends the connection.
		p, ok := c.api.PrincipalOf(cl.session)
		if ok && cl.area != "" && !p.Profile.Allows(cl.area, "view") {
			ok = false
		}
		if !ok {
			conn.SetWriteDeadline(time.Now().Add(liveWriteWait))
			conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "logged out"))
			return
		}
		if changes != nil && len(changes) == 0 {
			continue
		}
		buf.Reset()
		if err := cl.view.fragments(context.Background(), p, changes, &buf); err != nil || buf.Len() == 0 {
			continue
		}
		conn.SetWriteDeadline(time.Now().Add(liveWriteWait))
		if err := conn.WriteMessage(websocket.TextMessage, buf.Bytes()); err != nil {
			return
		}
		lastWrite = time.Now()
		c.hub.sent.Add(1)
	}
}
