package command

import "time"

// Init sets up a new cluster: the bootstrap account, its Administrator profile,
// the first operator, and the secret nodes use to authenticate to each other.
// It is applied once; a second Init is rejected.
type Init struct {
	AccountID     string `json:"account_id"`
	AccountName   string `json:"account_name"`
	AccountKind   string `json:"account_kind"`
	ProfileID     string `json:"profile_id"`
	OperatorID    string `json:"operator_id"`
	Email         string `json:"email"`
	PasswordHash  string `json:"password_hash"`
	ClusterSecret []byte `json:"cluster_secret"`
}

// CreateSession records a login. Only the hash of the session token is kept.
type CreateSession struct {
	SessionID  string    `json:"session_id"`
	TokenHash  string    `json:"token_hash"`
	OperatorID string    `json:"operator_id"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// DeleteSession ends a session (logout).
type DeleteSession struct {
	TokenHash string `json:"token_hash"`
}

// CreateSite adds a customer site to an account.
type CreateSite struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
	Name      string `json:"name"`
}

// DeleteSite removes an empty site.
type DeleteSite struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
}

// RemoveNode records that an administrator removed a node from the cluster, so
// that the leader does not add it back while it still gossips. Instance names
// the data dir that was removed: the same node id with a fresh data dir may join again.
type RemoveNode struct {
	NodeID   string `json:"node_id"`
	Instance string `json:"instance"`
}

func (*Init) CommandType() Type          { return TypeInit }
func (*CreateSession) CommandType() Type { return TypeCreateSession }
func (*DeleteSession) CommandType() Type { return TypeDeleteSession }
func (*CreateSite) CommandType() Type    { return TypeCreateSite }
func (*DeleteSite) CommandType() Type    { return TypeDeleteSite }
func (*RemoveNode) CommandType() Type    { return TypeRemoveNode }
