package reader

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/reader/decide"
	"lintel/reader/exchange"
)

// Conn is what one exchange needs from a transport: a byte stream with
// deadlines. A TCP connection is one; the BLE transport makes one out of
// characteristic writes and notifications.
type Conn interface {
	io.Reader
	io.Writer
	SetDeadline(time.Time) error
}

// Errors of the controller's operations.
var (
	ErrNotOwnReader = errors.New("reader: not a reader of this node")
	ErrUnknown      = errors.New("reader: no such reader")
)

// Config is what the controller needs from the node.
type Config struct {
	NodeID string
	View   View
	// Commit commits a command through the leader and returns once this
	// node has applied it; a *state.Rejection is a final answer.
	Commit func(ctx context.Context, c command.Command) error
	// NewID makes request and card ids.
	NewID func() string
	// Quorum tells whether the node can commit now and, when it cannot,
	// since when. Nil: always.
	Quorum func() (ok bool, lostAt time.Time)
	// Current tells whether the node's replica holds everything the
	// cluster committed (it applies, not merely hears the leader) and,
	// when not, since when; the offline grace counts from then. Nil: Quorum.
	Current func() (ok bool, since time.Time)
	Events  *EventLog
	Door    Door
	Log     *slog.Logger
	Timeout time.Duration // per read from the phone
	Now     func() time.Time
	// VerdictKey returns the cluster's verdict key (nil: verdicts go
	// unsigned, before the cluster is initialised).
	VerdictKey func() ed25519.PrivateKey
}

// Controller runs the readers of one node (SPEC 6): every transport hands
// it a connection for a reader, and it runs the exchange, decides from the
// local replica, drives the door and logs the event. Commands it cannot
// commit without a quorum (offline uses, deletion receipts, revokes taken
// offline) wait in the durable queue and are committed when the quorum is
// back.
type Controller struct {
	cfg  Config
	book *exchange.NonceBook
	keys *decide.KeyCache

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}

	mu sync.Mutex
	// withheld: cards revoked or lost on this node while it had no quorum;
	// its readers deny them at once (SPEC 3.1), until the command commits.
	withheld map[string]exchange.Reason
	// offlineUses: uses granted offline and not yet committed, by card.
	offlineUses map[string]int64
	// unwritten: events the event log refused (a full or failing disk),
	// oldest first, retried before every new event; since when it fails.
	unwritten    []Event
	failingSince time.Time
}

// maxUnwritten bounds the events held while the log cannot be written.
const maxUnwritten = 10000

// NewController starts a controller and its queue's drain loop.
func NewController(cfg Config) (*Controller, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Door == nil {
		cfg.Door = LogDoor{Log: cfg.Log}
	}
	if cfg.Quorum == nil {
		cfg.Quorum = func() (bool, time.Time) { return true, time.Time{} }
	}
	if cfg.Current == nil {
		cfg.Current = cfg.Quorum
	}
	if cfg.NewID == nil {
		return nil, errors.New("reader: NewID is required")
	}
	c := &Controller{
		cfg: cfg,
		// A challenge is answered within one read timeout; the book only
		// needs to outlive that, and its size bounds memory under a flood.
		book:        exchange.NewNonceBook(2*cfg.Timeout, 4096),
		keys:        decide.NewKeyCache(0),
		kick:        make(chan struct{}, 1),
		withheld:    map[string]exchange.Reason{},
		offlineUses: map[string]int64{},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if cfg.Events != nil {
		// A restart keeps enforcing what waits in the queue.
		queued, err := cfg.Events.Queued()
		if err != nil {
			return nil, err
		}
		for _, q := range queued {
			c.hold(q.Command)
		}
		c.wg.Add(1)
		go c.drain()
	}
	return c, nil
}

// Close stops the drain loop and ends pending commits.
func (c *Controller) Close() {
	c.cancel()
	c.wg.Wait()
}

// header makes a command made by this node's reader controller.
func (c *Controller) command(actor string, b command.Body) command.Command {
	return command.Command{Header: command.Header{
		RequestID: c.cfg.NewID(), Actor: actor, At: c.cfg.Now().UTC(), Node: c.cfg.NodeID,
	}, Body: b}
}

// Exchange runs one exchange with a phone at readerID over conn: challenge,
// presentation (or enrollment), decision, door, verdict and, after a delete
// instruction, the deletion receipt. It never panics on what the phone
// sends; every error ends the exchange.
func (c *Controller) Exchange(conn Conn, readerID string) error {
	conn.SetDeadline(c.cfg.Now().Add(c.cfg.Timeout))
	var rd state.Reader
	var known bool
	c.cfg.View.Read(func(s *state.State) { rd, known = s.Readers.Get(readerID) })
	if !known || rd.NodeID != c.cfg.NodeID {
		// Another node's reader or none: this node decides only for its own.
		// Only known readers are logged, so made-up ids cannot fill the log.
		if known {
			c.record(Event{ReaderID: readerID, Reason: string(exchange.ReasonWrongReader)})
		}
		return writeMsg(conn, exchange.Verdict{Reason: exchange.ReasonWrongReader})
	}
	c.cfg.Door.Show(readerID, FeedbackConnecting)
	nonce, err := exchange.RandomNonces{}.Nonce()
	if err != nil {
		c.cfg.Door.Show(readerID, FeedbackIdle)
		return err
	}
	if err := c.book.Issue(nonce, c.cfg.Now()); err != nil {
		c.cfg.Door.Show(readerID, FeedbackIdle)
		return err
	}
	ch := exchange.Challenge{Version: exchange.ProtocolVersion, Nonce: nonce, ReaderID: readerID, SiteID: rd.SiteID}
	if err := writeMsg(conn, ch); err != nil {
		c.cfg.Door.Show(readerID, FeedbackIdle)
		return err
	}
	conn.SetDeadline(c.cfg.Now().Add(c.cfg.Timeout))
	f, err := exchange.ReadFrame(conn)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
			c.cfg.Door.Show(readerID, FeedbackIdle)
			return err // a silent or departed phone: nothing to answer
		}
		return c.refuse(conn, readerID, nonce, "", exchange.ReasonFor(err), err)
	}
	if f.Type == exchange.TypeEnrollment {
		return c.enroll(conn, rd, ch, f)
	}
	var p exchange.Presentation
	if err := exchange.DecodeInto(f, &p); err != nil {
		return c.refuse(conn, readerID, nonce, "", exchange.ReasonFor(err), err)
	}
	d, key := c.decide(rd, ch, p)
	if d.Granted {
		c.cfg.Door.Unlock(readerID, time.Duration(rd.UnlockSeconds)*time.Second)
		c.cfg.Door.Show(readerID, FeedbackGranted)
	} else {
		c.cfg.Door.Show(readerID, FeedbackDenied)
	}
	c.record(Event{ReaderID: readerID, CardID: d.CardID, Cardholder: d.CardholderName, Granted: d.Granted, Reason: d.Reason})
	v := c.sign(exchange.Verdict{Granted: d.Granted, Reason: exchange.Reason(d.Reason), Delete: d.Delete, Nonce: nonce}, readerID, p.CardID)
	if err := writeMsg(conn, v); err != nil || !d.Delete || key == nil {
		return err
	}
	conn.SetDeadline(c.cfg.Now().Add(c.cfg.Timeout))
	var rc exchange.Receipt
	if err := readMsg(conn, &rc); err != nil {
		return fmt.Errorf("no deletion receipt: %w", err)
	}
	if rc.CardID != d.CardID {
		return fmt.Errorf("receipt for card %s after presenting %s", rc.CardID, d.CardID)
	}
	if err := exchange.VerifyReceipt(rc, key); err != nil {
		return fmt.Errorf("deletion receipt for %s: %w", rc.CardID, err)
	}
	if err := c.commitOrQueue("reader:"+readerID, &command.ConfirmRevoke{CardID: rc.CardID, Signature: rc.Signature}); err != nil {
		// The phone keeps the receipt until acknowledged and sends it again at check-in.
		c.cfg.Log.Warn("deletion receipt not kept", "reader", readerID, "card", rc.CardID, "err", err)
		return err
	}
	conn.SetDeadline(c.cfg.Now().Add(c.cfg.Timeout))
	// Echoing the receipt tells the phone the revoke is committed or
	// durably queued: it may forget the receipt.
	return writeMsg(conn, rc)
}

// refuse ends an exchange on a bad frame: red, an event, a denial.
func (c *Controller) refuse(conn Conn, readerID string, nonce exchange.Nonce, cardID string, r exchange.Reason, cause error) error {
	c.cfg.Door.Show(readerID, FeedbackDenied)
	c.record(Event{ReaderID: readerID, CardID: cardID, Reason: string(r)})
	writeMsg(conn, c.sign(exchange.Verdict{Reason: r, Nonce: nonce}, readerID, cardID))
	return cause
}

// sign signs a verdict with the cluster's verdict key, when there is one.
func (c *Controller) sign(v exchange.Verdict, readerID, cardID string) exchange.Verdict {
	if c.cfg.VerdictKey == nil {
		return v
	}
	if k := c.cfg.VerdictKey(); k != nil {
		return exchange.SignVerdict(v, readerID, cardID, k)
	}
	return v
}

// decide makes the decision for p at reader rd, with the offline rules,
// and counts the use when the card has max_uses. key is the card's device
// key when the phone must delete the card (to check its receipt).
func (c *Controller) decide(rd state.Reader, ch exchange.Challenge, p exchange.Presentation) (decide.Decision, []byte) {
	now := c.cfg.Now()
	if err := c.book.Use(p.Nonce, now); err != nil {
		return decide.Decision{Reason: string(exchange.ReasonFor(err)), CardID: p.CardID}, nil
	}
	var d decide.Decision
	var key []byte
	var site state.Site
	var uses, maxUses int64
	c.cfg.View.Read(func(s *state.State) {
		d = decide.Decide(s, rd.ID, ch, p, now, c.keys)
		cd, ok := s.Cards.Get(p.CardID)
		if ok && cd.Device != nil {
			key = append([]byte(nil), cd.Device.PublicKey...)
		}
		uses, maxUses = cd.Uses, cd.MaxUses
		site = s.Sites.At(rd.SiteID)
	})
	if d.CardID == "" {
		return d, nil // unknown card: nothing local can change that
	}
	c.mu.Lock()
	withheld, isWithheld := c.withheld[d.CardID]
	pending := c.offlineUses[d.CardID]
	c.mu.Unlock()
	if isWithheld && key != nil {
		// Revoked or lost here while offline: deny and delete at once, as
		// the committed revoke will.
		d.Granted, d.Reason, d.Delete, d.UseCounted = false, string(withheld), true, false
	}
	if !d.Delete {
		key = nil
	}
	if !d.Granted {
		return d, key
	}
	ok, lostAt := c.current()
	offline := !ok
	if offline && site.OfflinePolicy != state.OfflineKeep && now.Sub(lostAt) > site.OfflineGrace {
		// SPEC 5.3: cut off longer than the grace, the node cannot confirm
		// any card's state, and the site said deny.
		d.Granted, d.Reason = false, string(exchange.ReasonOffline)
		return d, key
	}
	if !d.UseCounted {
		return d, key
	}
	if !offline {
		ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
		err := c.cfg.Commit(ctx, c.command("reader:"+rd.ID, &command.RecordUse{CardID: d.CardID, ReaderID: rd.ID}))
		cancel()
		var rej *state.Rejection
		switch {
		case err == nil:
			return d, key
		case errors.As(err, &rej):
			// Another reader took the last use first.
			d.Granted, d.Reason = false, string(exchange.ReasonUsesExhausted)
			return d, key
		}
		// The quorum went away under us: follow the offline policy.
		c.cfg.Log.Warn("use not committed; offline policy applies", "reader", rd.ID, "card", d.CardID, "err", err)
	}
	if site.OfflinePolicy != state.OfflineKeep {
		// A counted card cannot be counted without a quorum: fail closed.
		d.Granted, d.Reason = false, string(exchange.ReasonOffline)
		return d, key
	}
	if uses+pending >= maxUses {
		d.Granted, d.Reason = false, string(exchange.ReasonUsesExhausted)
		return d, key
	}
	// Policy keep: open, and count the use when the quorum is back.
	if err := c.queue(c.command("reader:"+rd.ID, &command.RecordUse{CardID: d.CardID, ReaderID: rd.ID, Offline: true})); err != nil {
		c.cfg.Log.Error("offline use not queued; refusing", "card", d.CardID, "err", err)
		d.Granted, d.Reason = false, string(exchange.ReasonOffline)
	}
	return d, key
}

// enroll binds the phone at an armed reader to the armed cardholder.
func (c *Controller) enroll(conn Conn, rd state.Reader, ch exchange.Challenge, f exchange.Frame) error {
	var e exchange.Enrollment
	if err := exchange.DecodeInto(f, &e); err != nil {
		return c.refuse(conn, rd.ID, ch.Nonce, "", exchange.ReasonFor(err), err)
	}
	if err := c.book.Use(e.Nonce, c.cfg.Now()); err != nil {
		return c.refuse(conn, rd.ID, ch.Nonce, "", exchange.ReasonFor(err), err)
	}
	if err := exchange.VerifyEnrollment(e, ch); err != nil {
		return c.refuse(conn, rd.ID, ch.Nonce, "", exchange.ReasonFor(err), err)
	}
	var armed *state.Enrollment
	var holder string
	c.cfg.View.Read(func(s *state.State) {
		armed = s.Readers.At(rd.ID).Enrollment
		if armed != nil {
			h := s.Cardholders.At(armed.CardholderID)
			holder = h.FirstName + " " + h.LastName
		}
	})
	if armed == nil || !c.cfg.Now().Before(armed.Until) {
		// Not armed: an unknown phone presents a key no card knows.
		return c.refuse(conn, rd.ID, ch.Nonce, "", exchange.ReasonUnknownCard, errors.New("enrollment at a reader that is not armed"))
	}
	if ok, _ := c.cfg.Quorum(); !ok {
		return c.refuse(conn, rd.ID, ch.Nonce, "", exchange.ReasonOffline, errors.New("enrollment needs a quorum"))
	}
	cardID := c.cfg.NewID()
	ctx, cancel := context.WithTimeout(c.ctx, commitTimeout)
	err := c.cfg.Commit(ctx, c.command("reader:"+rd.ID, &command.EnrollCard{
		ReaderID: rd.ID, CardID: cardID, DeviceKey: e.DeviceKey, Nonce: e.Nonce[:], Signature: e.Signature,
	}))
	cancel()
	if err != nil {
		var rej *state.Rejection
		reason := exchange.ReasonOffline
		if errors.As(err, &rej) {
			reason = exchange.ReasonNotActivated
			if rej.Code == "not_armed" {
				reason = exchange.ReasonUnknownCard
			}
		}
		return c.refuse(conn, rd.ID, ch.Nonce, "", reason, fmt.Errorf("enrollment at %s: %w", rd.ID, err))
	}
	c.cfg.Door.Show(rd.ID, FeedbackGranted)
	c.record(Event{Kind: KindEnrollment, ReaderID: rd.ID, CardID: cardID, Cardholder: holder, Granted: true})
	conn.SetDeadline(c.cfg.Now().Add(c.cfg.Timeout))
	return writeMsg(conn, exchange.Enrolled{Nonce: ch.Nonce, CardID: cardID})
}

// Unlock opens readerID's door for its unlock time on an operator's
// order, and logs it.
func (c *Controller) Unlock(readerID, by string) (Event, error) {
	var rd state.Reader
	var known bool
	c.cfg.View.Read(func(s *state.State) { rd, known = s.Readers.Get(readerID) })
	switch {
	case !known:
		return Event{}, ErrUnknown
	case rd.NodeID != c.cfg.NodeID:
		return Event{}, ErrNotOwnReader
	}
	c.cfg.Door.Unlock(readerID, time.Duration(rd.UnlockSeconds)*time.Second)
	c.cfg.Door.Show(readerID, FeedbackGranted)
	return c.record(Event{Kind: KindRemoteUnlock, ReaderID: readerID, By: by, Granted: true}), nil
}

// record appends an event; a failure is logged, never turned into a
// denial (the door decision is already made).
func (c *Controller) record(e Event) Event {
	e.Time, e.NodeID = c.cfg.Now().UTC(), c.cfg.NodeID
	if e.Kind == "" {
		e.Kind = KindPresentation
	}
	e.Result = "denied"
	if e.Granted {
		e.Result = "granted"
	}
	if c.cfg.Events == nil {
		return e
	}
	c.flushUnwritten() // older events first, in order
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.unwritten) == 0 {
		out, err := c.cfg.Events.Append(e)
		if err == nil {
			c.failingSince = time.Time{}
			return out
		}
		if c.failingSince.IsZero() {
			c.failingSince = c.cfg.Now()
		}
		c.cfg.Log.Error("event log append failed; the event is kept in memory and retried", "err", err)
	}
	// Never lost silently: the event itself goes to the node's log, and
	// the node counts as not current until the log takes events again, so
	// past the offline grace the site's offline policy applies.
	c.cfg.Log.Error("event not written", "time", e.Time, "kind", e.Kind, "reader", e.ReaderID, "card", e.CardID,
		"result", e.Result, "reason", e.Reason, "by", e.By, "held", len(c.unwritten)+1)
	if len(c.unwritten) < maxUnwritten {
		c.unwritten = append(c.unwritten, e)
	}
	return e
}

// flushUnwritten retries the events the log refused, oldest first.
func (c *Controller) flushUnwritten() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.unwritten) == 0 || c.cfg.Events == nil {
		return
	}
	for len(c.unwritten) > 0 {
		if _, err := c.cfg.Events.Append(c.unwritten[0]); err != nil {
			return
		}
		c.unwritten = c.unwritten[1:]
	}
	c.failingSince = time.Time{}
	c.cfg.Log.Info("event log writable again; held events written")
}

// Unwritten is how many events wait for the event log, and since when it
// has refused them.
func (c *Controller) Unwritten() (int, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.unwritten), c.failingSince
}

// current is Current, and not current while events cannot be written.
func (c *Controller) current() (bool, time.Time) {
	ok, since := c.cfg.Current()
	c.mu.Lock()
	failing := c.failingSince
	c.mu.Unlock()
	if !failing.IsZero() && (ok || failing.Before(since)) {
		return false, failing
	}
	return ok, since
}

// WithholdOffline takes a revoke or a lost mark made while the node has no
// quorum (SPEC 3.1, 202 queued): the node's readers deny the card from now
// on, and the command is committed when the quorum is back.
func (c *Controller) WithholdOffline(cmd command.Command) error {
	switch cmd.Body.(type) {
	case *command.RevokeCard, *command.MarkLost:
	default:
		return fmt.Errorf("reader: %T cannot be queued offline", cmd.Body)
	}
	return c.queue(cmd)
}

// queue stores cmd durably for the drain loop and applies its local effect.
func (c *Controller) queue(cmd command.Command) error {
	if c.cfg.Events == nil {
		return errors.New("reader: no durable queue")
	}
	if err := c.cfg.Events.Enqueue(cmd); err != nil {
		return err
	}
	c.hold(cmd)
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return nil
}

// hold applies the local effect of a queued command until it commits.
func (c *Controller) hold(cmd command.Command) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch b := cmd.Body.(type) {
	case *command.RevokeCard:
		c.withheld[b.ID] = exchange.ReasonRevoked
	case *command.MarkLost:
		c.withheld[b.ID] = exchange.ReasonLost
	case *command.RecordUse:
		c.offlineUses[b.CardID]++
	}
}

// release ends the local effect of a queued command once it is settled.
func (c *Controller) release(cmd command.Command) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch b := cmd.Body.(type) {
	case *command.RevokeCard:
		delete(c.withheld, b.ID)
	case *command.MarkLost:
		delete(c.withheld, b.ID)
	case *command.RecordUse:
		if c.offlineUses[b.CardID]--; c.offlineUses[b.CardID] <= 0 {
			delete(c.offlineUses, b.CardID)
		}
	}
}

// commitOrQueue commits b now when the node has a quorum, and otherwise
// queues it durably.
func (c *Controller) commitOrQueue(actor string, b command.Body) error {
	cmd := c.command(actor, b)
	if ok, _ := c.cfg.Quorum(); ok {
		ctx, cancel := context.WithTimeout(c.ctx, commitTimeout)
		err := c.cfg.Commit(ctx, cmd)
		cancel()
		var rej *state.Rejection
		if err == nil || errors.As(err, &rej) {
			return err
		}
	}
	return c.queue(cmd)
}

// drainEvery is how often the queue is retried while it is not empty.
const drainEvery = 250 * time.Millisecond

// drain commits queued commands, oldest first, while the node has a quorum.
// A command the cluster refuses is dropped with a warning (it was made
// obsolete, e.g. the card was deleted); a command that could not reach the
// leader stays and is retried.
func (c *Controller) drain() {
	defer c.wg.Done()
	t := time.NewTicker(drainEvery)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
		c.flushUnwritten()
		if ok, _ := c.cfg.Quorum(); !ok {
			continue
		}
		queued, err := c.cfg.Events.Queued()
		if err != nil {
			c.cfg.Log.Error("offline queue", "err", err)
			continue
		}
		for _, q := range queued {
			ctx, cancel := context.WithTimeout(c.ctx, commitTimeout)
			err := c.cfg.Commit(ctx, q.Command)
			cancel()
			var rej *state.Rejection
			if err != nil && !errors.As(err, &rej) {
				break // no leader yet: keep the order, retry later
			}
			if rej != nil {
				c.cfg.Log.Warn("queued command refused by the cluster; dropped", "type", fmt.Sprintf("%T", q.Command.Body), "err", rej)
			}
			if err := c.cfg.Events.Dequeue(q.Seq); err != nil {
				c.cfg.Log.Error("offline queue", "err", err)
				break
			}
			c.release(q.Command)
		}
	}
}

// QueueLen is how many commands wait for the quorum.
func (c *Controller) QueueLen() int {
	if c.cfg.Events == nil {
		return 0
	}
	q, _ := c.cfg.Events.Queued()
	return len(q)
}
