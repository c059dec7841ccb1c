package state

import (
	"strings"
	"unicode/utf8"

	"lintel/consensus/command"
)

// MaxNameLen bounds names shown in lists.
const MaxNameLen = 100

// Validate checks what a command says on its own, without looking at state.
// The API calls it before submitting, so bad input never reaches the log;
// ApplyAt calls it again, so the log alone decides. The clock check is not
// here: it needs the leader's stamp, which only ApplyAt has.
func Validate(c command.Command) *Rejection {
	if c.At.IsZero() {
		return reject(Invalid, "invalid_command", "", "command has no time")
	}
	switch b := c.Body.(type) {
	case *command.Init:
		if b.AccountID == "" || b.OperatorID == "" || b.ProfileID == "" {
			return reject(Invalid, "invalid_command", "", "init needs account, profile and operator ids")
		}
		if b.AccountKind != AccountReseller && b.AccountKind != AccountEndCustomer {
			return reject(Invalid, "invalid_value", "kind", "account kind must be reseller or end_customer")
		}
		if !strings.Contains(b.Email, "@") {
			return reject(Invalid, "invalid_value", "email", "the administrator email %q is not an email address", b.Email)
		}
		if b.PasswordHash == "" || len(b.ClusterSecret) < 32 {
			return reject(Invalid, "invalid_command", "", "init needs a password hash and a 32-byte cluster secret")
		}
	case *command.CreateSession:
		if b.TokenHash == "" || b.SessionID == "" {
			return reject(Invalid, "invalid_command", "", "a session needs an id and a token hash")
		}
		if !b.ExpiresAt.After(c.At) {
			return reject(Invalid, "invalid_command", "", "a session must expire after it starts")
		}
	case *command.CreateSite:
		if b.ID == "" {
			return reject(Invalid, "invalid_command", "id", "a site needs an id")
		}
		if r := checkName("name", b.Name); r != nil {
			return r
		}
	case *command.DeleteSite:
		if b.ID == "" {
			return reject(Invalid, "invalid_command", "id", "which site? the id is missing")
		}
	case *command.AddMember:
		if b.NodeID == "" || b.Instance == "" || !strings.HasPrefix(b.Key, "sha256:") {
			return reject(Invalid, "invalid_command", "", "a member needs a node id, a data dir instance and a key fingerprint")
		}
	case *command.SetJoinToken:
		if !strings.HasPrefix(b.JoinToken, "lintel-join-1.") {
			return reject(Invalid, "invalid_command", "", "not a join token")
		}
	case *command.RemoveNode:
		if b.JoinToken != "" && !strings.HasPrefix(b.JoinToken, "lintel-join-1.") {
			return reject(Invalid, "invalid_command", "", "not a join token")
		}
		if k := len(b.GossipKey); k != 0 && k != 16 && k != 24 && k != 32 {
			return reject(Invalid, "invalid_command", "", "a gossip key is 16, 24 or 32 bytes")
		}
		if b.NodeID == "" {
			return reject(Invalid, "invalid_value", "id", "which node? the id is missing")
		}
	}
	return nil
}

func checkName(field, v string) *Rejection {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return reject(Invalid, "required", field, "%s is required", field)
	case !utf8.ValidString(v):
		return reject(Invalid, "invalid_value", field, "%s is not valid UTF-8 text", field)
	case utf8.RuneCountInString(v) > MaxNameLen:
		return reject(Invalid, "too_long", field, "%s is longer than %d characters", field, MaxNameLen)
	case strings.ContainsAny(v, "\x00\r\n\t"):
		return reject(Invalid, "invalid_value", field, "%s may not contain control characters", field)
	}
	return nil
}
