package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wneessen/go-mail"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// Delivery tuning (node/DESIGN.md, "Mail").
const (
	mailBackoffBase = time.Second     // wait after the first failed attempt
	mailBackoffMax  = 5 * time.Minute // the doubling stops here
	// mailMaxAttempts failed attempts make a message final (status failed):
	// with the backoff above that is about an hour of relay outage.
	mailMaxAttempts = 20
	mailTimeout     = 30 * time.Second // one SMTP conversation, dial included
	// mailGrace lets a conversation in progress finish when the mailer is
	// stopped: cutting it after the relay took the data but before its reply
	// is the one way to get a duplicate without any crash.
	mailGrace = time.Second
	// mailIdlePoll is a safety net: new messages normally wake the mailer
	// through poke (node.observe sees every outbox change).
	mailIdlePoll = 5 * time.Second
	// mailCommitTimeout bounds each MessageDelivered / MessageFailed apply.
	mailCommitTimeout = 5 * time.Second
)

// mailer delivers the outbox to the --smtp relay. It runs only on the
// leader (the leader loop starts and stops it), one message at a time, so a
// message is never in two SMTP conversations of this node at once; the next
// leader picks up whatever is still queued in the replicated state.
type mailer struct {
	n     *Node
	log   *slog.Logger
	host  string // empty: no relay, messages wait in the outbox
	port  int
	addr  string // host:port, bracketed for IPv6 (go-mail's own joining is not)
	from  string
	wake  chan struct{}
	mu    sync.Mutex
	stopF context.CancelFunc // of the run in progress, nil when stopped
	done  chan struct{}      // closed when the latest run has returned
}

func newMailer(n *Node) (*mailer, error) {
	m := &mailer{n: n, log: n.log.With("part", "mailer"), wake: make(chan struct{}, 1), from: senderAddress(n.cfg.NodeID)}
	if n.cfg.SMTP == "" {
		return m, nil
	}
	host, port, err := net.SplitHostPort(n.cfg.SMTP)
	if err == nil {
		m.port, err = strconv.Atoi(port)
	}
	if err != nil || host == "" || m.port < 1 || m.port > 65535 {
		return nil, fmt.Errorf("--smtp %q is not HOST:PORT", n.cfg.SMTP)
	}
	m.host, m.addr = host, net.JoinHostPort(host, port)
	return m, nil
}

// senderAddress is the From of every message: lintel@<node id>.local, the
// node id reduced to what a mail domain label may hold.
func senderAddress(nodeID string) string {
	label := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return '-'
	}, nodeID)
	label = strings.Trim(label, "-.")
	if label == "" {
		return "lintel@lintel.local"
	}
	return "lintel@" + label + ".local"
}

// messageID is the Message-ID of an outbox message: the same on every
// attempt and from every leader, so a mail client can recognise a repeat.
func messageID(id string) string { return id + "@outbox.lintel.local" }

// poke wakes the mailer when the outbox changed; it never blocks.
func (m *mailer) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// start begins delivering, once leadership is established. A run still
// ending from an earlier term is waited for by the new run, not by the
// caller: the leader loop never blocks on mail.
func (m *mailer) start() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopF != nil {
		return
	}
	if m.host == "" {
		m.log.Info("no --smtp relay: activation messages stay in the outbox for an operator to hand out")
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	prev, done := m.done, make(chan struct{})
	m.stopF, m.done = cancel, done
	go m.run(ctx, prev, done)
}

// stop ends delivery on loss of leadership; it does not wait.
func (m *mailer) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopF != nil {
		m.stopF()
		m.stopF = nil
	}
}

// close stops and waits for the last run: the node is shutting down.
func (m *mailer) close() {
	m.stop()
	m.mu.Lock()
	done := m.done
	m.mu.Unlock()
	if done != nil {
		<-done
	}
}

func (m *mailer) run(ctx context.Context, prev <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	if prev != nil {
		<-prev // the previous run is cancelled; it ends within mailGrace plus a commit
	}
	m.log.Info("delivering the outbox", "relay", m.addr, "from", m.from)
	retryAt := map[string]time.Time{} // failed messages wait here for their backoff
	accepted := map[string]bool{}     // the relay took them but the commit did not happen (yet)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		case <-timer.C:
		}
		wait := m.pass(ctx, retryAt, accepted)
		timer.Stop()
		select { // drain a tick that fired during the pass
		case <-timer.C:
		default:
		}
		timer.Reset(wait)
	}
}

// pass tries every queued message that is due, in creation order, and
// returns how long to sleep before the next pass unless poked.
func (m *mailer) pass(ctx context.Context, retryAt map[string]time.Time, accepted map[string]bool) time.Duration {
	var pending []state.Message
	m.n.raft.Read(func(s *state.State) { pending = s.PendingMessages() })
	queued := make(map[string]bool, len(pending))
	for _, msg := range pending {
		queued[msg.ID] = true
	}
	for id := range retryAt {
		if !queued[id] {
			delete(retryAt, id)
		}
	}
	for id := range accepted {
		if !queued[id] {
			delete(accepted, id)
		}
	}
	wait := mailIdlePoll
	for _, msg := range pending {
		if ctx.Err() != nil {
			return wait
		}
		if t, ok := retryAt[msg.ID]; ok {
			if d := time.Until(t); d > 0 {
				wait = min(wait, d)
				continue
			}
		}
		if accepted[msg.ID] {
			// Already with the relay: only the commit is missing; never send it again.
			if m.commitDelivered(msg) {
				delete(accepted, msg.ID)
			} else {
				retryAt[msg.ID] = time.Now().Add(mailBackoffBase)
				wait = min(wait, mailBackoffBase)
			}
			continue
		}
		leader, queued := m.stillOurs(ctx, msg.ID)
		if !leader {
			// Not confirmed: deposed (the leader loop stops this run) or no quorum for now.
			return min(wait, mailBackoffBase)
		}
		if !queued {
			continue
		}
		final, relayDown, err := m.send(ctx, msg)
		if err == nil {
			accepted[msg.ID] = true
			if m.commitDelivered(msg) {
				delete(accepted, msg.ID)
			} else {
				retryAt[msg.ID] = time.Now().Add(mailBackoffBase)
				wait = min(wait, mailBackoffBase)
			}
			continue
		}
		if ctx.Err() != nil {
			// Cut short by the stop itself: not the relay's fault, count nothing.
			return wait
		}
		attempts := msg.Attempts + 1
		final = final || attempts >= mailMaxAttempts
		m.commitFailed(msg, attempts, err, final)
		if !final {
			d := backoff(attempts)
			retryAt[msg.ID] = time.Now().Add(d)
			wait = min(wait, d)
		}
		if relayDown {
			// The others would fail the same way; they are tried on the next pass.
			return min(wait, mailBackoffBase)
		}
	}
	return wait
}

// backoff is the wait after the given number of failed attempts: 1 s, 2 s,
// 4 s, ... up to 5 min.
func backoff(attempts int) time.Duration {
	d := mailBackoffBase
	for i := 1; i < attempts && d < mailBackoffMax; i++ {
		d *= 2
	}
	return min(d, mailBackoffMax)
}

// stillOurs confirms, just before a message goes to the relay, that this
// node still leads (a quorum answers) and that the message is still queued
// once the state has caught up: a deposed leader that has not noticed yet
// must not send what the new leader may already have delivered.
func (m *mailer) stillOurs(ctx context.Context, id string) (leader, queued bool) {
	ctx, cancel := context.WithTimeout(ctx, mailCommitTimeout)
	defer cancel()
	idx, err := m.n.raft.ReadIndex(ctx)
	if err == nil {
		err = m.n.raft.WaitForIndex(ctx, idx)
	}
	if err != nil {
		m.log.Debug("leadership not confirmed; message held", "message", id, "err", err)
		return false, false
	}
	m.n.raft.Read(func(s *state.State) { queued = s.Outbox.At(id).Status == state.MessageQueued })
	return true, queued
}

// send hands one message to the relay in its own SMTP conversation. final
// means no later attempt can succeed (the message cannot be built);
// relayDown means the relay could not be reached at all.
func (m *mailer) send(ctx context.Context, msg state.Message) (final, relayDown bool, err error) {
	em := mail.NewMsg()
	if err := em.From(m.from); err != nil {
		return true, false, err
	}
	if err := em.To(msg.To); err != nil {
		return true, false, fmt.Errorf("recipient %q: %w", msg.To, err)
	}
	em.Subject(msg.Subject)
	em.SetMessageIDWithValue(messageID(msg.ID))
	em.SetDateWithValue(msg.CreatedAt) // the same bytes on every attempt
	em.SetGenHeader("Auto-Submitted", "auto-generated")
	em.SetBodyString(mail.TypeTextPlain, msg.Body)

	// The conversation outlives a stop by mailGrace at most, then its
	// connection is closed under it: go-mail only honours the context
	// while dialling.
	convCtx, cancelConv := context.WithTimeout(context.Background(), mailTimeout)
	defer cancelConv()
	stopGrace := context.AfterFunc(ctx, func() { time.AfterFunc(mailGrace, cancelConv) })
	defer stopGrace()
	dial := func(dctx context.Context, network, _ string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(dctx, network, m.addr)
		if err != nil {
			return nil, err
		}
		context.AfterFunc(convCtx, func() { c.Close() })
		return c, nil
	}
	client, err := mail.NewClient(m.host,
		mail.WithPort(m.port),
		// Opportunistic, as Postfix's "may": STARTTLS when the relay offers it,
		// plain otherwise (go-mail's default would refuse a relay without TLS).
		// The certificate is not verified: a LAN relay is named by address and
		// usually has a self-signed one, and an attacker able to present a
		// false one could as well strip STARTTLS. Encryption still keeps the
		// activation links from passive listeners.
		mail.WithTLSPolicy(mail.TLSOpportunistic),
		mail.WithTLSConfig(&tls.Config{ServerName: m.host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}),
		mail.WithTimeout(mailTimeout),
		mail.WithDialContextFunc(dial),
	)
	if err != nil {
		return true, false, err
	}
	conn, err := client.DialToSMTPClientWithContext(convCtx)
	if err != nil {
		return false, true, fmt.Errorf("relay %s: %w", m.addr, err)
	}
	err = client.SendWithSMTPClient(conn, em)
	if cerr := client.CloseWithSMTPClient(conn); cerr != nil && err == nil {
		// The relay accepted the data (250 after the final dot); a failed QUIT changes nothing.
		m.log.Debug("closing the relay connection", "err", cerr)
	}
	return false, false, err
}

func (m *mailer) commitDelivered(msg state.Message) bool {
	err := m.commit("mail-sent-"+msg.ID, &command.MessageDelivered{ID: msg.ID})
	if err != nil {
		// At-least-once window: the next leader may send it again, with the same Message-ID.
		m.log.Warn("the relay accepted a message but its delivery is not committed", "message", msg.ID, "err", err)
		return false
	}
	m.log.Info("message delivered to the relay", "message", msg.ID, "card", msg.CardID, "attempts", msg.Attempts+1)
	return true
}

func (m *mailer) commitFailed(msg state.Message, attempts int, sendErr error, final bool) {
	text := sendErr.Error()
	if len(text) > 500 {
		text = strings.ToValidUTF8(text[:500], "") + "..."
	}
	err := m.commit(fmt.Sprintf("mail-failed-%s-%d", msg.ID, attempts), &command.MessageFailed{ID: msg.ID, Error: text, Final: final})
	if final {
		m.log.Warn("message not delivered; giving up, an operator can hand the link out or resend the card",
			"message", msg.ID, "card", msg.CardID, "attempts", attempts, "err", text, "commit_err", err)
		return
	}
	m.log.Warn("message not delivered; will retry", "message", msg.ID, "attempts", attempts,
		"retry_in", backoff(attempts), "err", text, "commit_err", err)
}

// commit applies a mailer command with a request id, so a retried apply of
// an unknown outcome is harmless. It runs even after a stop: recording what
// the relay did matters more than stopping a few milliseconds sooner.
func (m *mailer) commit(requestID string, b command.Body) error {
	ctx, cancel := context.WithTimeout(context.Background(), mailCommitTimeout)
	defer cancel()
	_, res, err := m.n.raft.Apply(ctx, command.Command{
		Header: command.Header{RequestID: requestID, Actor: "system", At: time.Now().UTC()}, Body: b,
	})
	if err != nil {
		return err
	}
	if res.Err != nil {
		return res.Err
	}
	return nil
}
