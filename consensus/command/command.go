// Package command defines the typed commands that travel through the Raft log.
//
// Wire form: one type byte, one encoding-version byte, then the JSON envelope.
// The type byte is append-only: a number, once used, keeps its meaning forever.
// Its high bit marks a command an older node may skip when it does not know it.
package command

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Type identifies a command in the log. Append only: never renumber, never reuse.
type Type uint8

// IgnoreUnknown, set on a type byte, lets a node that does not know the type skip it.
const IgnoreUnknown Type = 0x80

// The command types. New types go at the end.
const (
	TypeInit Type = iota + 1
	TypeCreateSession
	TypeDeleteSession
	TypeCreateSite
	TypeDeleteSite
	TypeRemoveNode
	TypeAddIssuer
	TypeLoadVoucher
	TypeSetAlertThreshold
	TypeUpdateSite
	TypeCreateCardholder
	TypeCreateCard
	TypeSendCard
	TypeActivateCard
	TypeExpireLinks
	TypeRevokeCard
	TypeConfirmRevoke
	TypeMarkLost
	TypeDeleteCard
	TypeUpdateCard
	TypeMessageDelivered
	TypeMessageFailed
	TypeCreateReaderConfig
	TypeDeleteReaderConfig
	TypeImportCards
	TypeCreateAccount
	TypeUpdateAccount
	TypeSetAccountStatus
	TypeDeleteAccount
	TypeTransferCredits
	TypeCreateProfile
	TypeUpdateProfile
	TypeDeleteProfile
	TypeCreateOperator
	TypeUpdateOperator
	TypeSetOperatorStatus
	TypeDeleteOperator
	TypeAcceptInvitation
	TypeCreateToken
	TypeDeleteToken
	TypeUpdateCardholder
	TypeDeleteCardholder
	TypeCreateConfigurator
	TypeUpdateConfigurator
	TypeDeleteConfigurator
	TypeCreateConfigCard
	TypeSetTemplate
	TypeCreateReader
	TypeUpdateReader
	TypeDeleteReader
	TypeCreateSchedule
	TypeCreateAccessLevel
	TypeRecordUse
	TypeArmEnrollment
	TypeEnrollCard
	TypeAddMember
	TypeSetJoinToken
)

// Last is the newest command type this build knows; nodes gossip it, and a
// node makes a command of a newer type only when every member knows it (a
// node that cannot decode a command halts its apply).
const Last = TypeSetJoinToken

// Baseline: every build that gossips its Last knows the types up to here, so
// a member whose gossip says nothing (an older build) is taken to know them.
const Baseline = TypeEnrollCard

// Version is the encoding version written by this build.
const Version = 1

// MaxSize bounds one encoded command; the API limits bodies well below it.
const MaxSize = 4 << 20

// Header is carried by every command. At is set where the command is made,
// never where it is applied, so every node applies the same time.
type Header struct {
	RequestID string    `json:"request_id"`
	Actor     string    `json:"actor"`
	At        time.Time `json:"at"`
	// Idempotent marks a RequestID derived from a client's Idempotency-Key:
	// its answer is kept 24 h instead of the short retry window.
	Idempotent bool `json:"idempotent,omitempty"`
	// Node is the node that made the command, for the account history.
	Node string `json:"node,omitempty"`
}

// Body is the payload of one command type.
type Body interface {
	CommandType() Type
}

// Command is a decoded command.
type Command struct {
	Header
	Body Body
}

// Type returns the command's type byte, without the IgnoreUnknown flag.
func (c Command) Type() Type { return c.Body.CommandType() }

type envelope struct {
	Header
	Body json.RawMessage `json:"body"`
}

// ErrUnknownType is returned for a type this build does not know.
var ErrUnknownType = errors.New("unknown command type")

// ErrSkippable is returned for an unknown type that carries IgnoreUnknown.
var ErrSkippable = errors.New("unknown command type marked ignorable")

// Encode returns the wire form of c.
func Encode(c Command) ([]byte, error) {
	if c.Body == nil {
		return nil, errors.New("command has no body")
	}
	if c.RequestID == "" {
		return nil, errors.New("command has no request id")
	}
	body, err := json.Marshal(c.Body)
	if err != nil {
		return nil, err
	}
	env, err := json.Marshal(envelope{Header: Header{
		RequestID: c.RequestID, Actor: c.Actor, At: c.At.UTC(), Idempotent: c.Idempotent, Node: c.Node,
	}, Body: body})
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(env)+2)
	out = append(out, byte(c.Body.CommandType()), Version)
	return append(out, env...), nil
}

// Decode parses the wire form.
func Decode(b []byte) (Command, error) {
	if len(b) < 2 {
		return Command{}, errors.New("command too short")
	}
	if len(b) > MaxSize {
		return Command{}, fmt.Errorf("command of %d bytes is over the %d byte limit", len(b), MaxSize)
	}
	t, v := Type(b[0]), b[1]
	if v != Version {
		return Command{}, fmt.Errorf("command encoding version %d is not known to this build", v)
	}
	mk, ok := registry[t&^IgnoreUnknown]
	if !ok {
		if t&IgnoreUnknown != 0 {
			return Command{}, ErrSkippable
		}
		return Command{}, fmt.Errorf("%w %d", ErrUnknownType, t)
	}
	// One pass: the body decodes in place into the type's own struct (every
	// node decodes every command, and the leader checks each forwarded one):
	// 5 µs for a cardholder write, where an envelope with the body kept raw
	// and decoded after took 11. A command without a body decodes as the
	// type's empty body, which the state refuses as it would any empty body;
	// Encode always writes one.
	body := mk()
	env := decodeEnvelope{Body: body}
	if err := json.Unmarshal(b[2:], &env); err != nil {
		return Command{}, fmt.Errorf("command envelope: %w", err)
	}
	return Command{Header: env.Header, Body: body}, nil
}

type decodeEnvelope struct {
	Header
	Body any `json:"body"`
}

// registry makes an empty body for each known type.
var registry = map[Type]func() Body{
	TypeInit:          func() Body { return &Init{} },
	TypeCreateSession: func() Body { return &CreateSession{} },
	TypeDeleteSession: func() Body { return &DeleteSession{} },
	TypeCreateSite:    func() Body { return &CreateSite{} },
	TypeDeleteSite:    func() Body { return &DeleteSite{} },
	TypeRemoveNode:    func() Body { return &RemoveNode{} },

	TypeAddIssuer:          func() Body { return &AddIssuer{} },
	TypeLoadVoucher:        func() Body { return &LoadVoucher{} },
	TypeSetAlertThreshold:  func() Body { return &SetAlertThreshold{} },
	TypeUpdateSite:         func() Body { return &UpdateSite{} },
	TypeCreateCardholder:   func() Body { return &CreateCardholder{} },
	TypeCreateCard:         func() Body { return &CreateCard{} },
	TypeSendCard:           func() Body { return &SendCard{} },
	TypeActivateCard:       func() Body { return &ActivateCard{} },
	TypeExpireLinks:        func() Body { return &ExpireLinks{} },
	TypeRevokeCard:         func() Body { return &RevokeCard{} },
	TypeConfirmRevoke:      func() Body { return &ConfirmRevoke{} },
	TypeMarkLost:           func() Body { return &MarkLost{} },
	TypeDeleteCard:         func() Body { return &DeleteCard{} },
	TypeUpdateCard:         func() Body { return &UpdateCard{} },
	TypeMessageDelivered:   func() Body { return &MessageDelivered{} },
	TypeMessageFailed:      func() Body { return &MessageFailed{} },
	TypeCreateReaderConfig: func() Body { return &CreateReaderConfig{} },
	TypeDeleteReaderConfig: func() Body { return &DeleteReaderConfig{} },
	TypeImportCards:        func() Body { return &ImportCards{} },
	TypeCreateAccount:      func() Body { return &CreateAccount{} },
	TypeUpdateAccount:      func() Body { return &UpdateAccount{} },
	TypeSetAccountStatus:   func() Body { return &SetAccountStatus{} },
	TypeDeleteAccount:      func() Body { return &DeleteAccount{} },
	TypeTransferCredits:    func() Body { return &TransferCredits{} },
	TypeCreateProfile:      func() Body { return &CreateProfile{} },
	TypeUpdateProfile:      func() Body { return &UpdateProfile{} },
	TypeDeleteProfile:      func() Body { return &DeleteProfile{} },
	TypeCreateOperator:     func() Body { return &CreateOperator{} },
	TypeUpdateOperator:     func() Body { return &UpdateOperator{} },
	TypeSetOperatorStatus:  func() Body { return &SetOperatorStatus{} },
	TypeDeleteOperator:     func() Body { return &DeleteOperator{} },
	TypeAcceptInvitation:   func() Body { return &AcceptInvitation{} },
	TypeCreateToken:        func() Body { return &CreateToken{} },
	TypeDeleteToken:        func() Body { return &DeleteToken{} },
	TypeUpdateCardholder:   func() Body { return &UpdateCardholder{} },
	TypeDeleteCardholder:   func() Body { return &DeleteCardholder{} },
	TypeCreateConfigurator: func() Body { return &CreateConfigurator{} },
	TypeUpdateConfigurator: func() Body { return &UpdateConfigurator{} },
	TypeDeleteConfigurator: func() Body { return &DeleteConfigurator{} },
	TypeCreateConfigCard:   func() Body { return &CreateConfigCard{} },
	TypeSetTemplate:        func() Body { return &SetTemplate{} },
	TypeCreateReader:       func() Body { return &CreateReader{} },
	TypeUpdateReader:       func() Body { return &UpdateReader{} },
	TypeDeleteReader:       func() Body { return &DeleteReader{} },
	TypeCreateSchedule:     func() Body { return &CreateSchedule{} },
	TypeCreateAccessLevel:  func() Body { return &CreateAccessLevel{} },
	TypeRecordUse:          func() Body { return &RecordUse{} },
	TypeArmEnrollment:      func() Body { return &ArmEnrollment{} },
	TypeEnrollCard:         func() Body { return &EnrollCard{} },
	TypeAddMember:          func() Body { return &AddMember{} },
	TypeSetJoinToken:       func() Body { return &SetJoinToken{} },
}
