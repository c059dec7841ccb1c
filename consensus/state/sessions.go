package state

import (
	"time"

	"lintel/consensus/command"
)

// Session is a login. The token itself is never stored, only its hash.
type Session struct {
	ID         string    `json:"id"`
	TokenHash  string    `json:"token_hash"`
	OperatorID string    `json:"operator_id"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

func (s *State) applyCreateSession(c command.Command, b *command.CreateSession, ch *changes) (any, *Rejection) {
	o, ok := s.Operators.Get(b.OperatorID)
	if !ok {
		return nil, reject(NotFound, "operator_not_found", "", "operator %s does not exist", b.OperatorID)
	}
	if o.Status != OperatorActivated {
		return nil, reject(Forbidden, "operator_not_active", "", "this operator is %s and cannot log in", o.Status)
	}
	// Expired sessions leave with the next login, judged on the state clock.
	for h, x := range s.Sessions.All() {
		if !x.ExpiresAt.After(s.Clock) {
			s.Sessions.Delete(h)
			ch.del("sessions", x.ID)
		}
	}
	s.Sessions.Put(b.TokenHash, Session{
		ID: b.SessionID, TokenHash: b.TokenHash, OperatorID: b.OperatorID,
		CreatedAt: c.At.UTC(), ExpiresAt: b.ExpiresAt.UTC(),
	})
	ch.put("sessions", b.SessionID)
	return map[string]any{"id": b.SessionID, "expires_at": b.ExpiresAt.UTC()}, nil
}

func (s *State) applyDeleteSession(b *command.DeleteSession, ch *changes) (any, *Rejection) {
	x, ok := s.Sessions.Get(b.TokenHash)
	if !ok {
		return nil, reject(NotFound, "session_not_found", "", "this session has already ended")
	}
	s.Sessions.Delete(b.TokenHash)
	ch.del("sessions", x.ID)
	return nil, nil
}

// SessionByTokenHash returns a session that has not expired at now.
func (s *State) SessionByTokenHash(hash string, now time.Time) (Session, bool) {
	x, ok := s.Sessions.Get(hash)
	if !ok || !x.ExpiresAt.After(now) {
		return Session{}, false
	}
	return x, true
}
