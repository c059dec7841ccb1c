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
	// TLS is the cluster's certificate authority, gossip key and join token,
	// made by the bootstrapping node; Member records its own key.
	TLS    *ClusterTLS `json:"tls,omitempty"`
	Member *AddMember  `json:"member,omitempty"`
}

// ClusterTLS is what members need to let each other in: the CA (PEM; every
// member signs its own renewals and the joiners' certificates with it), the
// key that encrypts gossip, and the current join token.
type ClusterTLS struct {
	CACert    []byte `json:"ca_cert"`
	CAKey     []byte `json:"ca_key"`
	GossipKey []byte `json:"gossip_key"`
	JoinToken string `json:"join_token" max:"200"`
}

// AddMember records the key of a node let in with the join token: the
// other nodes accept a certificate for that node, data dir and key only.
type AddMember struct {
	NodeID   string `json:"node_id"`
	Instance string `json:"instance"`
	Key      string `json:"key"` // pki.KeyFingerprint of its public key
	// TokenHash is pki.SecretHash of the token the joiner proved: refused
	// unless it is still the cluster's token when the entry applies (a
	// member whose replica lags must not let in with a rotated token).
	TokenHash string `json:"token_hash,omitempty"`
}

// SetJoinToken replaces the join token (an administrator rotated it).
type SetJoinToken struct {
	JoinToken string `json:"join_token" max:"200"`
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
	Instance string `json:"instance"` // gossip's word; the member record's instance wins
	// JoinToken, when set, replaces the join token in the same step: the
	// removed node may hold the old one.
	JoinToken string `json:"join_token,omitempty" max:"200"`
	// GossipKey, when set, replaces the gossip key: the removed node holds the old one.
	GossipKey []byte `json:"gossip_key,omitempty"`
}

func (*Init) CommandType() Type          { return TypeInit }
func (*CreateSession) CommandType() Type { return TypeCreateSession }
func (*DeleteSession) CommandType() Type { return TypeDeleteSession }
func (*CreateSite) CommandType() Type    { return TypeCreateSite }
func (*DeleteSite) CommandType() Type    { return TypeDeleteSite }
func (*RemoveNode) CommandType() Type    { return TypeRemoveNode }
func (*AddMember) CommandType() Type     { return TypeAddMember }
func (*SetJoinToken) CommandType() Type  { return TypeSetJoinToken }
