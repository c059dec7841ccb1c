package state

import "fmt"

// InvariantError is a broken rule of the ledger or the registry: a bug, never
// a user's mistake. The self-check reports it.
type InvariantError struct{ msg string }

func (e *InvariantError) Error() string { return e.msg }

func errorf(format string, args ...any) error {
	return &InvariantError{msg: fmt.Sprintf(format, args...)}
}
