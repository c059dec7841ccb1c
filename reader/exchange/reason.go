package exchange

// Reason is a denial reason, in SPEC 4.6's fixed words.
type Reason string

const (
	ReasonNone            Reason = "" // granted
	ReasonUnknownCard     Reason = "unknown_card"
	ReasonBadSignature    Reason = "bad_signature"
	ReasonNotActivated    Reason = "not_activated"
	ReasonRevoked         Reason = "revoked"
	ReasonLost            Reason = "lost"
	ReasonExpired         Reason = "expired"
	ReasonNotYetValid     Reason = "not_yet_valid"
	ReasonUsesExhausted   Reason = "uses_exhausted"
	ReasonWrongReader     Reason = "wrong_reader"
	ReasonOutsideSchedule Reason = "outside_schedule"
	ReasonReplay          Reason = "replay"
	// ReasonOffline: the node has had no quorum for longer than the site's
	// offline grace (policy deny), or a counted card cannot be counted.
	ReasonOffline Reason = "offline"
)

// reasons is the wire code table: index = code. Append only.
var reasons = [...]Reason{
	ReasonNone,
	ReasonUnknownCard,
	ReasonBadSignature,
	ReasonNotActivated,
	ReasonRevoked,
	ReasonLost,
	ReasonExpired,
	ReasonNotYetValid,
	ReasonUsesExhausted,
	ReasonWrongReader,
	ReasonOutsideSchedule,
	ReasonReplay,
	ReasonOffline,
}

var reasonCode = func() map[Reason]byte {
	m := make(map[Reason]byte, len(reasons))
	for i, r := range reasons {
		m[r] = byte(i)
	}
	return m
}()

func (r Reason) String() string {
	if r == ReasonNone {
		return "none"
	}
	return string(r)
}
