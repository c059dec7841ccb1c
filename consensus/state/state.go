// Package state is the registry every node holds: deterministic, with no I/O,
// no clock and no randomness. Time, ids, tokens and keys arrive in commands.
// Applying the same log gives byte-identical state on every node.
package state

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"lintel/consensus/command"
)

// Kind classifies a rejection; the API maps each kind to one HTTP status.
type Kind int

const (
	Invalid   Kind = iota + 1 // 400
	NotFound                  // 404
	Conflict                  // 409
	Forbidden                 // 403
)

// Rejection is a business refusal returned by Apply. It changes nothing.
type Rejection struct {
	Kind    Kind   `json:"kind"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (r *Rejection) Error() string { return r.Message }

func reject(k Kind, code, field, format string, args ...any) *Rejection {
	return &Rejection{Kind: k, Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Result is what applying one command answers: a JSON value or a rejection.
//
// Replayed is set on the answer to a repeated plain request id: the command
// was applied at that index and nothing is applied now. The replicated
// state keeps only the rejection and a digest (Sum) of such an answer, not
// its value (SumOf); the FSM fills Value back from the answers it keeps
// in memory, and a caller that still finds it empty knows the write applied
// but not what it answered.
type Result struct {
	Value    json.RawMessage `json:"value,omitempty"`
	Err      *Rejection      `json:"error,omitempty"`
	Replayed uint64          `json:"replayed,omitempty"`
	Sum      string          `json:"sum,omitempty"`
}

// SumOf is the digest a dedup entry keeps of an answer's value ("" for none).
func SumOf(v json.RawMessage) string {
	if len(v) == 0 {
		return ""
	}
	h := sha256.Sum256(v)
	return hex.EncodeToString(h[:16])
}

// Change tells watchers that a record changed at a Raft index.
type Change struct {
	Index uint64 `json:"index"`
	Table string `json:"table"`
	ID    string `json:"id"`
	Op    string `json:"op"` // put, delete, or archive (a history line leaving the state)
	// Entry is the history line an archive change takes out of the state.
	Entry *HistoryEntry `json:"-"`
}

// Retry windows of the dedup table: a plain request id guards against the
// retries of an unknown outcome; an Idempotency-Key is kept 24 h (SPEC 3.1).
const (
	DedupRetryWindow       = 2 * time.Minute
	DedupIdempotencyWindow = 24 * time.Hour
)

// State is the whole replicated registry. Records in the maps are values and
// are replaced, never changed in place, so a shallow clone is an immutable copy.
type State struct {
	Index         uint64               `json:"index"`
	Clock         time.Time            `json:"clock"` // the latest leader stamp applied
	Initialized   bool                 `json:"initialized"`
	ClusterSecret []byte               `json:"cluster_secret"`
	Accounts      Table[Account]       `json:"accounts"`
	Profiles      Table[Profile]       `json:"profiles"`
	Operators     Table[Operator]      `json:"operators"`
	Sessions      Table[Session]       `json:"sessions"` // by token hash
	Sites         Table[Site]          `json:"sites"`
	RemovedNodes  Table[RemovedNode]   `json:"removed_nodes"`
	TLS           command.ClusterTLS   `json:"tls,omitzero"`
	Members       Table[Member]        `json:"members,omitzero"` // by node id: the key each node was let in with
	ReaderConfigs Table[ReaderConfig]  `json:"reader_configs"`
	Cardholders   Table[Cardholder]    `json:"cardholders"`
	Cards         Table[Card]          `json:"cards"`
	Outbox        Table[Message]       `json:"outbox"`
	Issuers       Table[Issuer]        `json:"issuers"`
	Invitations   Table[Invitation]    `json:"invitations"` // by invite link hash
	Tokens        Table[Token]         `json:"tokens"`
	Configurators Table[Configurator]  `json:"configurators"`
	Templates     Table[Template]      `json:"templates"` // account + kind
	Readers       Table[Reader]        `json:"readers"`
	Schedules     Table[Schedule]      `json:"schedules"`
	AccessLevels  Table[AccessLevel]   `json:"access_levels"`
	Transfers     List[Transfer]       `json:"transfers"`
	History       HistoryTable         `json:"history"`
	Vouchers      Table[LoadedVoucher] `json:"vouchers"`
	// LostWithAccounts: credits of deleted accounts, lost with them.
	LostWithAccounts int64             `json:"lost_with_accounts"`
	Dedup            Table[DedupEntry] `json:"dedup"`
	// DedupOrder lists request ids per window in the order they were applied,
	// so expiry is deterministic and cheap.
	DedupRetry      List[string] `json:"dedup_retry"`
	DedupIdempotent List[string] `json:"dedup_idempotent"`

	operatorByEmail index[string] // derived: lower-case email → operator id
	siteByName      index[string] // derived: account id + lower-case name → site id
	// derived from Cards and ReaderConfigs; see indexCard
	cardByLink        index[string] // link hash → card id (sent cards only)
	cardByOldLink     index[string] // retired link hash → card id
	privateIDs        counts        // site + config + private id → cards using it
	holderConfigs     counts        // cardholder + config → cards
	siteCards         counts        // site → cards
	cardList          index[string] // site, list, name, id → card id (cardListKey)
	cardStatusList    index[string] // site, list, status, name, id → card id
	readerConfigNames index[string] // account + lower-case name → reader config id
	tokenByHash       index[string] // API token hash → token id
	dedupKeptBytes    int64         // the size of the answers the idempotency keys keep
}

// answer is what a repeated request id gets: the stored answer, marked
// replayed when its value was not kept.
func (e DedupEntry) answer() Result {
	r := e.Result
	if r.Value == nil && r.Sum != "" {
		r.Replayed = e.Index
	}
	return r
}

// DedupEntry keeps the first answer to a request id: whole for an
// Idempotency-Key, its rejection and the digest of its value for a plain
// request id.
type DedupEntry struct {
	At     time.Time `json:"at"` // the state clock when it was applied
	Index  uint64    `json:"index"`
	Result Result    `json:"result"`
}

// New returns an empty state.
func New() *State { return &State{} }

// reindex rebuilds the derived indexes after a restore.
func (s *State) reindex() {
	s.reindexTables()
	b := newCardIndexes(s.Cards.Len())
	for _, c := range s.Cards.ptrs {
		b.add(c)
	}
	b.into(s)
}

// reindexTables rebuilds the indexes of every table but the cards.
func (s *State) reindexTables() {
	s.operatorByEmail = indexOf(s.Operators, func(o *Operator) string { return normEmail(o.Email) })
	s.siteByName = indexOf(s.Sites, func(x *Site) string { return siteNameKey(x.AccountID, x.Name) })
	s.readerConfigNames = indexOf(s.ReaderConfigs, func(rc *ReaderConfig) string { return readerConfigKey(rc.AccountID, rc.Name) })
	s.tokenByHash = indexOf(s.Tokens, func(t *Token) string { return t.TokenHash })
	s.dedupKeptBytes = 0
	for _, id := range s.DedupIdempotent.All() {
		s.dedupKeptBytes += int64(len(s.Dedup.At(id).Result.Value))
	}
}

// indexOf indexes a table's ids by a key of each record.
func indexOf[V any](t Table[V], key func(*V) string) index[string] {
	es := make([]entry[string], 0, t.Len())
	for id, v := range t.ptrs {
		es = append(es, entry[string]{key(v), id})
	}
	return buildIndex(es)
}

// MaxClockAhead is how far a command's own time may run ahead of the
// leader's stamp. Further ahead, the node that made it has a wrong clock,
// and its times would end up in records and history. Times in the past are
// accepted: offline queues commit uses, revokes and deletion receipts hours
// after they happened, stamped with when they happened.
const MaxClockAhead = time.Minute

// Apply is ApplyAt with the command's own time as the leader's stamp, for
// logs built without one (tests, tools).
func (s *State) Apply(index uint64, c command.Command) (Result, []Change) {
	return s.ApplyAt(index, c.At, c)
}

// ApplyAt applies one command at a Raft index. stamped is the time the leader
// appended the entry (raft.Log.AppendedAt): it is replicated with the entry,
// so every node sees the same value, and it alone moves the state clock on
// which expiry (dedup answers, sessions, links, invitations, enrollment arms)
// is judged; no other node's clock can push it. A zero stamp falls back to
// the command's time. ApplyAt never panics on bad input: a command that
// breaks a rule returns a Rejection and changes nothing.
func (s *State) ApplyAt(index uint64, stamped time.Time, c command.Command) (Result, []Change) {
	s.Index = index
	// UTC also drops the monotonic reading the leader's in-memory entry has.
	stamp := stamped.UTC()
	if stamped.IsZero() {
		stamp = c.At.UTC()
	}
	// Monotonic: a new leader whose clock is a little behind does not wind it back.
	if stamp.After(s.Clock) {
		s.Clock = stamp
	}
	s.expireDedup()
	if e, ok := s.Dedup.Get(c.RequestID); ok && c.RequestID != "" {
		return e.answer(), nil
	}
	ch := &changes{index: index}
	var value any
	rej := checkClock(c, stamp)
	if rej == nil {
		rej = Validate(c)
	}
	var answer json.RawMessage
	if rej == nil {
		// The command applies to a copy, which replaces the state only if
		// it succeeds, its answer encoded included: a refusal part way
		// leaves nothing behind.
		tx := *s
		if value, rej = tx.dispatch(c, ch); rej == nil && value != nil {
			var err error
			if answer, err = json.Marshal(value); err != nil {
				rej = reject(Invalid, "internal", "", "could not encode the answer: %v", err)
			}
		}
		if rej == nil {
			*s = tx
		}
	}
	res := Result{Err: rej, Value: answer}
	if rej == nil {
		s.record(index, c, value, ch)
	} else {
		ch.list = nil
	}
	s.remember(c, index, res)
	return res, ch.list
}

// checkClock refuses a command made on a clock more than MaxClockAhead ahead
// of the leader's stamp.
func checkClock(c command.Command, stamp time.Time) *Rejection {
	ahead := c.At.Sub(stamp)
	if ahead <= MaxClockAhead {
		return nil
	}
	shown := ahead.Round(time.Second)
	if shown <= MaxClockAhead {
		shown = ahead.Round(time.Millisecond)
	}
	node := "the node that made it"
	if c.Node != "" {
		node = "node " + c.Node
	}
	return reject(Invalid, "clock_skew", "", "this command's time %s is %s ahead of the cluster's clock %s: check the clock (NTP) of %s",
		c.At.UTC().Format(time.RFC3339), shown, stamp.Format(time.RFC3339), node)
}

func (s *State) dispatch(c command.Command, ch *changes) (any, *Rejection) {
	switch b := c.Body.(type) {
	case *command.Init:
		return s.applyInit(c, b, ch)
	case *command.CreateSession:
		return s.applyCreateSession(c, b, ch)
	case *command.DeleteSession:
		return s.applyDeleteSession(b, ch)
	case *command.CreateSite:
		return s.applyCreateSite(c, b, ch)
	case *command.DeleteSite:
		return s.applyDeleteSite(b, ch)
	case *command.RemoveNode:
		return s.applyRemoveNode(c, b, ch)
	case *command.AddMember:
		return s.applyAddMember(c, b, ch)
	case *command.SetJoinToken:
		return s.applySetJoinToken(b, ch)
	case *command.UpdateSite:
		return s.applyUpdateSite(b, ch)
	case *command.AddIssuer:
		return s.applyAddIssuer(c, b, ch)
	case *command.LoadVoucher:
		return s.applyLoadVoucher(c, b, ch)
	case *command.SetAlertThreshold:
		return s.applySetAlertThreshold(b, ch)
	case *command.CreateCardholder:
		return s.applyCreateCardholder(c, b, ch)
	case *command.CreateCard:
		return s.applyCreateCard(c, b, ch)
	case *command.SendCard:
		return s.applySendCard(c, b, ch)
	case *command.ActivateCard:
		return s.applyActivateCard(c, b, ch)
	case *command.ExpireLinks:
		return s.applyExpireLinks(ch)
	case *command.RevokeCard:
		return s.applyRevokeCard(c, b, ch)
	case *command.ConfirmRevoke:
		return s.applyConfirmRevoke(c, b, ch)
	case *command.MarkLost:
		return s.applyMarkLost(c, b, ch)
	case *command.DeleteCard:
		return s.applyDeleteCard(c, b, ch)
	case *command.UpdateCard:
		return s.applyUpdateCard(c, b, ch)
	case *command.MessageDelivered:
		return s.applyMessageDelivered(c, b, ch)
	case *command.MessageFailed:
		return s.applyMessageFailed(b, ch)
	case *command.CreateReaderConfig:
		return s.applyCreateReaderConfig(c, b, ch)
	case *command.DeleteReaderConfig:
		return s.applyDeleteReaderConfig(b, ch)
	case *command.ImportCards:
		return s.applyImportCards(c, b, ch)
	case *command.CreateAccount:
		return s.applyCreateAccount(c, b, ch)
	case *command.UpdateAccount:
		return s.applyUpdateAccount(b, ch)
	case *command.SetAccountStatus:
		return s.applySetAccountStatus(b, ch)
	case *command.DeleteAccount:
		return s.applyDeleteAccount(b, ch)
	case *command.TransferCredits:
		return s.applyTransferCredits(c, b, ch)
	case *command.CreateProfile:
		return s.applyCreateProfile(b, ch)
	case *command.UpdateProfile:
		return s.applyUpdateProfile(b, ch)
	case *command.DeleteProfile:
		return s.applyDeleteProfile(b, ch)
	case *command.CreateOperator:
		return s.applyCreateOperator(c, b, ch)
	case *command.UpdateOperator:
		return s.applyUpdateOperator(b, ch)
	case *command.SetOperatorStatus:
		return s.applySetOperatorStatus(b, ch)
	case *command.DeleteOperator:
		return s.applyDeleteOperator(b, ch)
	case *command.AcceptInvitation:
		return s.applyAcceptInvitation(c, b, ch)
	case *command.CreateToken:
		return s.applyCreateToken(c, b, ch)
	case *command.DeleteToken:
		return s.applyDeleteToken(b, ch)
	case *command.UpdateCardholder:
		return s.applyUpdateCardholder(b, ch)
	case *command.DeleteCardholder:
		return s.applyDeleteCardholder(c, b, ch)
	case *command.CreateConfigurator:
		return s.applyCreateConfigurator(c, b, ch)
	case *command.UpdateConfigurator:
		return s.applyUpdateConfigurator(b, ch)
	case *command.DeleteConfigurator:
		return s.applyDeleteConfigurator(b, ch)
	case *command.CreateConfigCard:
		return s.applyCreateConfigCard(c, b, ch)
	case *command.SetTemplate:
		return s.applySetTemplate(b, ch)
	case *command.CreateReader:
		return s.applyCreateReader(c, b, ch)
	case *command.UpdateReader:
		return s.applyUpdateReader(b, ch)
	case *command.DeleteReader:
		return s.applyDeleteReader(b, ch)
	case *command.CreateSchedule:
		return s.applyCreateSchedule(b, ch)
	case *command.CreateAccessLevel:
		return s.applyCreateAccessLevel(b, ch)
	case *command.RecordUse:
		return s.applyRecordUse(b, ch)
	case *command.ArmEnrollment:
		return s.applyArmEnrollment(c, b, ch)
	case *command.EnrollCard:
		return s.applyEnrollCard(c, b, ch)
	}
	return nil, reject(Invalid, "unknown_command", "", "command type %d is not known to this node", c.Type())
}

func (s *State) remember(c command.Command, index uint64, res Result) {
	if c.RequestID == "" {
		return
	}
	// Kept from when the cluster applied it (the state clock, which is this
	// entry's stamp unless a new leader's clock runs behind), not from the
	// command's own time: an offline command made hours ago still gets its
	// full window, and the queue stays in time order.
	e := DedupEntry{At: s.Clock, Index: index, Result: res}
	if !c.Idempotent {
		// A plain request id guards the retries of one write in flight;
		// the value is kept by the FSM in memory, and only its digest
		// here, so the table stays small whatever the answers hold.
		e.Result = Result{Err: res.Err, Sum: SumOf(res.Value)}
	}
	s.Dedup.Put(c.RequestID, e)
	if c.Idempotent {
		s.DedupIdempotent.Append(c.RequestID)
		s.dedupKeptBytes += int64(len(res.Value))
	} else {
		s.DedupRetry.Append(c.RequestID)
	}
}

// expireDedup drops answers older than their window, measured on the state clock.
func (s *State) expireDedup() {
	s.DedupRetry = s.expireQueue(s.DedupRetry, DedupRetryWindow, DedupRetryMax, 0)
	s.DedupIdempotent = s.expireQueue(s.DedupIdempotent, DedupIdempotencyWindow, DedupIdempotencyMax, DedupKeptMaxBytes)
}

// Bounds of the dedup table, whatever the write rate: its answers are kept
// for the window, but for no more than this many requests. At 3 000 writes
// a second 50 000 plain request ids still cover 16 s of retries (a write
// waits 5 s at most); at low rates the window is the limit.
const (
	DedupRetryMax       = 50000
	DedupIdempotencyMax = 100000
	// DedupKeptMaxBytes bounds the answers the idempotency keys keep whole,
	// give or take the newest (a card is about 600 bytes: some 27 000 of
	// them; an import batch's answer is a few bytes).
	DedupKeptMaxBytes = 16 << 20
)

// expireQueue drops a queue's oldest entries while they are older than the
// window, or more than most (room for the answer this apply may keep), or
// (maxBytes > 0) while their answers hold more than maxBytes.
func (s *State) expireQueue(q List[string], window time.Duration, most int, maxBytes int64) List[string] {
	cut := s.Clock.Add(-window)
	n := 0
	// By position, not q.All: an iterator is an allocation on every apply.
	for ; n < q.Len(); n++ {
		id := q.Index(n)
		e, ok := s.Dedup.Get(id)
		if ok && !e.At.Before(cut) && q.Len()-n < most && (maxBytes == 0 || s.dedupKeptBytes <= maxBytes) {
			break
		}
		if maxBytes > 0 {
			s.dedupKeptBytes -= int64(len(e.Result.Value))
		}
		s.Dedup.Delete(id)
	}
	q.DropFront(n)
	return q
}

// Clone returns a copy that later Apply calls do not change: a copy of the
// struct, since every table in it is persistent.
func (s *State) Clone() *State {
	c := *s
	return &c
}

// DedupResult returns the stored answer to a request id, if it is still kept.
func (s *State) DedupResult(requestID string) (Result, bool) {
	e, ok := s.Dedup.Get(requestID)
	return e.Result, ok
}

type changes struct {
	index uint64
	list  []Change
}

func (c *changes) put(table, id string) {
	c.list = append(c.list, Change{Index: c.index, Table: table, ID: id, Op: "put"})
}

func (c *changes) del(table, id string) {
	c.list = append(c.list, Change{Index: c.index, Table: table, ID: id, Op: "delete"})
}

// ClusterID names the cluster to phones: a one-way digest of the cluster
// secret, the same on every node, so a wallet can tell this cluster's cards
// from another's without learning the secret.
func (s *State) ClusterID() string {
	if len(s.ClusterSecret) == 0 {
		return ""
	}
	sum := sha256.Sum256(append([]byte("lintel-cluster-id\n"), s.ClusterSecret...))
	return hex.EncodeToString(sum[:8])
}

// Check applies c to a copy of this version, as the leader would at the
// next index with stamp at, and returns its refusal: the door for a request
// that needs no login, so that a refused one never becomes a log entry.
//
// Only the command's own checks and its dispatch run: no dedup expiry (on a
// replica that has been quiet, that would delete every expired entry again
// on each copy), no dedup entry, no history line.
func (s *State) Check(c command.Command, at time.Time) *Rejection {
	tx := *s
	tx.Index = s.Index + 1
	stamp := at.UTC()
	if stamp.After(tx.Clock) {
		tx.Clock = stamp
	}
	rej := checkClock(c, stamp)
	if rej == nil {
		rej = Validate(c)
	}
	if rej == nil {
		_, rej = tx.dispatch(c, &changes{index: tx.Index})
	}
	return rej
}
