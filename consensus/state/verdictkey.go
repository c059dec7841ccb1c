package state

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
)

// VerdictKey is the cluster's key for signing reader verdicts, derived from
// the cluster secret so every node holds the same key without another
// secret to distribute. Phones get its public half at activation and
// check-in, and carry out a delete instruction only when it is signed.
// Nil before Init.
func (s *State) VerdictKey() ed25519.PrivateKey {
	if len(s.ClusterSecret) == 0 {
		return nil
	}
	m := hmac.New(sha256.New, s.ClusterSecret)
	m.Write([]byte("lintel-verdict-key 1"))
	return ed25519.NewKeyFromSeed(m.Sum(nil))
}
