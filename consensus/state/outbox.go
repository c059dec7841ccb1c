package state

import (
	"sort"
	"time"

	"lintel/consensus/command"
)

// Message statuses.
const (
	MessageQueued = "queued"
	MessageSent   = "sent"
	MessageFailed = "failed"
)

// Message is an outbox message: queued with the command that needs it,
// delivered once by the leader's mailer, replicated with the cards.
type Message struct {
	ID        string     `json:"id"`
	AccountID string     `json:"account_id"`
	CardID    string     `json:"card_id"`
	To        string     `json:"to"`
	Subject   string     `json:"subject"`
	Body      string     `json:"body"`
	Status    string     `json:"status"`
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error"`
	CreatedAt time.Time  `json:"created_at"`
	SentAt    *time.Time `json:"sent_at"`
}

func (s *State) queueMessage(c command.Command, m command.Message, cardID string, ch *changes, accountID string) {
	if m.ID == "" {
		return
	}
	s.Outbox.Put(m.ID, Message{
		ID: m.ID, AccountID: accountID, CardID: cardID, To: m.To, Subject: m.Subject, Body: m.Body,
		Status: MessageQueued, CreatedAt: c.At.UTC(),
	})
	ch.put("outbox", m.ID)
}

// Redacted replaces a delivered message's body: the link it carried was
// single-use and reached its holder, so the replica need not keep it.
const Redacted = "(delivered; the activation link is not kept after delivery)"

func (s *State) applyMessageDelivered(c command.Command, b *command.MessageDelivered, ch *changes) (any, *Rejection) {
	m, ok := s.Outbox.Get(b.ID)
	if !ok {
		return nil, reject(NotFound, "message_not_found", "", "message %s does not exist", b.ID)
	}
	if m.Status == MessageSent {
		return m, nil // delivered once; a repeat changes nothing
	}
	m.Status, m.Attempts, m.SentAt, m.Body, m.LastError = MessageSent, m.Attempts+1, ptime(c.At), Redacted, ""
	s.Outbox.Put(m.ID, m)
	ch.put("outbox", m.ID)
	return m, nil
}

func (s *State) applyMessageFailed(b *command.MessageFailed, ch *changes) (any, *Rejection) {
	m, ok := s.Outbox.Get(b.ID)
	if !ok {
		return nil, reject(NotFound, "message_not_found", "", "message %s does not exist", b.ID)
	}
	if m.Status == MessageSent {
		return m, nil
	}
	m.Attempts++
	m.LastError = b.Error
	if b.Final {
		m.Status = MessageFailed
	}
	s.Outbox.Put(m.ID, m)
	ch.put("outbox", m.ID)
	return m, nil
}

// PendingMessages lists queued messages in creation order, for the mailer.
func (s *State) PendingMessages() []Message {
	var out []Message
	for _, m := range s.Outbox.All() {
		if m.Status == MessageQueued {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}
