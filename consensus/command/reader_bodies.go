package command

import (
	"encoding/binary"
	"time"
)

// Readers, schedules and access levels (SPEC 4.6).

// CreateReader adds a door reader, run by one node.
type CreateReader struct {
	ID            string `json:"id"`
	AccountID     string `json:"account_id"`
	SiteID        string `json:"site_id"`
	NodeID        string `json:"node_id"`
	Name          string `json:"name"`
	ReaderConfig  string `json:"reader_config"`
	Transport     string `json:"transport"` // link or ble
	BLEAdapter    string `json:"ble_adapter"`
	UnlockSeconds int    `json:"unlock_seconds"`
}

// UpdateReader edits a reader; nil fields stay.
type UpdateReader struct {
	ID            string  `json:"id"`
	AccountID     string  `json:"account_id"`
	Name          *string `json:"name,omitempty"`
	NodeID        *string `json:"node_id,omitempty"`
	ReaderConfig  *string `json:"reader_config,omitempty"`
	Transport     *string `json:"transport,omitempty"`
	BLEAdapter    *string `json:"ble_adapter,omitempty"`
	UnlockSeconds *int    `json:"unlock_seconds,omitempty"`
}

// DeleteReader removes a reader (and it from the access levels naming it).
type DeleteReader struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
}

// Window is a weekly time window: days (0 = Sunday … 6) and "HH:MM" bounds
// in the site's time zone; To after From, or "24:00".
type Window struct {
	Days []int  `json:"days"`
	From string `json:"from"`
	To   string `json:"to"`
}

// CreateSchedule adds weekly windows and holidays ("YYYY-MM-DD", closed all day).
type CreateSchedule struct {
	ID        string   `json:"id"`
	AccountID string   `json:"account_id"`
	SiteID    string   `json:"site_id"`
	Name      string   `json:"name"`
	Windows   []Window `json:"windows"`
	Holidays  []string `json:"holidays,omitempty"`
}

// CreateAccessLevel names which readers, at which times, a card may open.
type CreateAccessLevel struct {
	ID         string   `json:"id"`
	AccountID  string   `json:"account_id"`
	SiteID     string   `json:"site_id"`
	Name       string   `json:"name"`
	ReaderIDs  []string `json:"reader_ids"`
	ScheduleID string   `json:"schedule_id,omitempty"`
}

func (*CreateReader) CommandType() Type      { return TypeCreateReader }
func (*UpdateReader) CommandType() Type      { return TypeUpdateReader }
func (*DeleteReader) CommandType() Type      { return TypeDeleteReader }
func (*CreateSchedule) CommandType() Type    { return TypeCreateSchedule }
func (*CreateAccessLevel) CommandType() Type { return TypeCreateAccessLevel }

// RecordUse counts one use of a card with max_uses, committed before the
// door opens, so the limit holds across every reader of every node.
type RecordUse struct {
	CardID   string `json:"card_id"`
	ReaderID string `json:"reader_id"`
	// Offline: the door already opened while the node had no quorum (the
	// site's offline policy keep); the use is counted even past the limit,
	// because it happened.
	Offline bool `json:"offline,omitempty"`
}

func (*RecordUse) CommandType() Type { return TypeRecordUse }

// ArmEnrollment arms a reader: the next phone presented there before Until
// is bound to the cardholder as a new activated card (seed 002). A new arm
// replaces the old; Disarm clears it.
type ArmEnrollment struct {
	ReaderID     string    `json:"reader_id"`
	AccountID    string    `json:"account_id"`
	CardholderID string    `json:"cardholder_id"`
	Until        time.Time `json:"until"`
	Disarm       bool      `json:"disarm,omitempty"`
}

// EnrollCard binds a phone presented at an armed reader: a new device_id
// card of the cardholder, activated with the phone's key, paid like an
// activation. Signature is the phone's over EnrollmentMessage, so the log
// alone proves the phone holds the key.
type EnrollCard struct {
	ReaderID  string `json:"reader_id"`
	CardID    string `json:"card_id"`
	DeviceKey []byte `json:"device_key"` // PKIX DER, P-256
	Nonce     []byte `json:"nonce"`      // the reader's challenge
	Signature []byte `json:"signature"`
}

// EnrollmentDomain starts an enrollment message. It differs from the
// credential exchange's and the deletion receipt's prefixes at the 8th
// byte, so no signature of one kind verifies as another.
const EnrollmentDomain = "lintel-enrollment 1\n"

// EnrollmentMessage is what a phone signs to enroll at a reader:
// EnrollmentDomain ‖ nonce ‖ u16be len ‖ reader id ‖ u16be len ‖ device key.
func EnrollmentMessage(nonce []byte, readerID string, deviceKey []byte) []byte {
	b := make([]byte, 0, len(EnrollmentDomain)+len(nonce)+4+len(readerID)+len(deviceKey))
	b = append(b, EnrollmentDomain...)
	b = append(b, nonce...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(readerID)))
	b = append(b, readerID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(deviceKey)))
	return append(b, deviceKey...)
}

func (*ArmEnrollment) CommandType() Type { return TypeArmEnrollment }
func (*EnrollCard) CommandType() Type    { return TypeEnrollCard }
