package state

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"time"

	"lintel/consensus/command"
)

// Reader transports.
const (
	TransportLink = "link"
	TransportBLE  = "ble"
)

// MinUnlock is the shortest a door stays unlocked (issue: at least 3 s).
const (
	MinUnlockSeconds     = 3
	DefaultUnlockSeconds = 5
)

// Reader is a door reader; one node runs it (SPEC 4.6).
type Reader struct {
	ID            string    `json:"id"`
	AccountID     string    `json:"account_id"`
	SiteID        string    `json:"site_id"`
	NodeID        string    `json:"node_id"`
	Name          string    `json:"name"`
	ReaderConfig  string    `json:"reader_config"`
	Transport     string    `json:"transport"`
	BLEAdapter    string    `json:"ble_adapter"`
	UnlockSeconds int       `json:"unlock_seconds"`
	CreatedAt     time.Time `json:"created_at"`
	// Enrollment is set while the reader is armed (seed 002).
	Enrollment *Enrollment `json:"enrollment,omitempty"`
}

// Enrollment: the next phone presented at the reader before Until becomes a
// card of the cardholder.
type Enrollment struct {
	CardholderID string    `json:"cardholder_id"`
	Until        time.Time `json:"until"`
	ArmedBy      string    `json:"armed_by"`
}

// MaxEnrollmentArm bounds how long a reader stays armed.
const MaxEnrollmentArm = time.Hour

// Schedule is weekly windows in the site's time zone, closed on holidays.
type Schedule struct {
	ID        string           `json:"id"`
	AccountID string           `json:"account_id"`
	SiteID    string           `json:"site_id"`
	Name      string           `json:"name"`
	Windows   []command.Window `json:"windows"`
	Holidays  []string         `json:"holidays"`
}

// AccessLevel is which readers a card may open, and when.
type AccessLevel struct {
	ID         string   `json:"id"`
	AccountID  string   `json:"account_id"`
	SiteID     string   `json:"site_id"`
	Name       string   `json:"name"`
	ReaderIDs  []string `json:"reader_ids"`
	ScheduleID string   `json:"schedule_id"`
}

// minutes parses "HH:MM" (00:00–24:00) into minutes after midnight.
func minutes(s string) (int, bool) {
	var h, m int
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	if _, err := fmt.Sscanf(s, "%02d:%02d", &h, &m); err != nil || h > 24 || m > 59 || (h == 24 && m != 0) {
		return 0, false
	}
	return h*60 + m, true
}

// OpenAt reports whether the schedule admits the instant t, read in loc.
func (sc Schedule) OpenAt(t time.Time, loc *time.Location) bool {
	local := t.In(loc)
	if slices.Contains(sc.Holidays, local.Format("2006-01-02")) {
		return false
	}
	day, now := int(local.Weekday()), local.Hour()*60+local.Minute()
	for _, w := range sc.Windows {
		from, _ := minutes(w.From)
		to, _ := minutes(w.To)
		if slices.Contains(w.Days, day) && now >= from && now < to {
			return true
		}
	}
	return false
}

func (s *State) validReaderFields(accountID, siteID, name, config, transport, adapter string, unlock int) *Rejection {
	if r := checkName("name", name); r != nil {
		return r
	}
	if _, ok := s.readerConfigByName(accountID, config); !ok {
		return reject(NotFound, "reader_config_not_found", "reader_config", "there is no reader configuration named %q in this account", config)
	}
	switch transport {
	case TransportLink:
	case TransportBLE:
		if adapter == "" || len(adapter) > 16 || strings.ContainsAny(adapter, " /\\") {
			return reject(Invalid, "invalid_value", "ble_adapter", "a BLE reader needs the node's HCI adapter, such as hci0")
		}
	default:
		return reject(Invalid, "invalid_value", "transport", "transport must be link or ble")
	}
	if unlock < MinUnlockSeconds || unlock > 300 {
		return reject(Invalid, "invalid_value", "unlock_seconds", "a door stays unlocked %d to 300 seconds", MinUnlockSeconds)
	}
	return nil
}

func (s *State) applyCreateReader(c command.Command, b *command.CreateReader, ch *changes) (any, *Rejection) {
	site, ok := s.Sites.Get(b.SiteID)
	if !ok || site.AccountID != b.AccountID {
		return nil, reject(NotFound, "site_not_found", "site_id", "site %s does not exist", b.SiteID)
	}
	if b.UnlockSeconds == 0 {
		b.UnlockSeconds = DefaultUnlockSeconds
	}
	if b.Transport == "" {
		b.Transport = TransportLink
	}
	if r := s.validReaderFields(b.AccountID, b.SiteID, b.Name, b.ReaderConfig, b.Transport, b.BLEAdapter, b.UnlockSeconds); r != nil {
		return nil, r
	}
	if b.NodeID == "" {
		return nil, reject(Invalid, "required", "node_id", "a reader belongs to one node: give node_id")
	}
	if _, ok := s.Readers.Get(b.ID); ok || b.ID == "" {
		return nil, reject(Conflict, "duplicate_id", "id", "a reader with id %s already exists", b.ID)
	}
	rd := Reader{ID: b.ID, AccountID: b.AccountID, SiteID: b.SiteID, NodeID: b.NodeID, Name: strings.TrimSpace(b.Name),
		ReaderConfig: b.ReaderConfig, Transport: b.Transport, BLEAdapter: b.BLEAdapter, UnlockSeconds: b.UnlockSeconds, CreatedAt: c.At.UTC()}
	s.Readers.Put(rd.ID, rd)
	ch.put("readers", rd.ID)
	return rd, nil
}

func (s *State) applyUpdateReader(b *command.UpdateReader, ch *changes) (any, *Rejection) {
	rd, ok := s.Readers.Get(b.ID)
	if !ok || rd.AccountID != b.AccountID {
		return nil, reject(NotFound, "reader_not_found", "", "reader %s does not exist", b.ID)
	}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	set(&rd.Name, b.Name)
	set(&rd.NodeID, b.NodeID)
	set(&rd.ReaderConfig, b.ReaderConfig)
	set(&rd.Transport, b.Transport)
	set(&rd.BLEAdapter, b.BLEAdapter)
	if b.UnlockSeconds != nil {
		rd.UnlockSeconds = *b.UnlockSeconds
	}
	if r := s.validReaderFields(rd.AccountID, rd.SiteID, rd.Name, rd.ReaderConfig, rd.Transport, rd.BLEAdapter, rd.UnlockSeconds); r != nil {
		return nil, r
	}
	if rd.NodeID == "" {
		return nil, reject(Invalid, "required", "node_id", "a reader belongs to one node: give node_id")
	}
	s.Readers.Put(rd.ID, rd)
	ch.put("readers", rd.ID)
	return rd, nil
}

func (s *State) applyDeleteReader(b *command.DeleteReader, ch *changes) (any, *Rejection) {
	rd, ok := s.Readers.Get(b.ID)
	if !ok || rd.AccountID != b.AccountID {
		return nil, reject(NotFound, "reader_not_found", "", "reader %s does not exist", b.ID)
	}
	for id, al := range s.AccessLevels.All() {
		if i := slices.Index(al.ReaderIDs, rd.ID); i >= 0 {
			al.ReaderIDs = slices.Delete(slices.Clone(al.ReaderIDs), i, i+1)
			s.AccessLevels.Put(id, al)
			ch.put("access_levels", id)
		}
	}
	s.Readers.Delete(rd.ID)
	ch.del("readers", rd.ID)
	return nil, nil
}

func (s *State) applyCreateSchedule(b *command.CreateSchedule, ch *changes) (any, *Rejection) {
	site, ok := s.Sites.Get(b.SiteID)
	if !ok || site.AccountID != b.AccountID {
		return nil, reject(NotFound, "site_not_found", "site_id", "site %s does not exist", b.SiteID)
	}
	if r := checkName("name", b.Name); r != nil {
		return nil, r
	}
	if len(b.Windows) == 0 || len(b.Windows) > 50 {
		return nil, reject(Invalid, "invalid_value", "windows", "a schedule has 1 to 50 weekly windows")
	}
	for i, w := range b.Windows {
		from, ok1 := minutes(w.From)
		to, ok2 := minutes(w.To)
		if !ok1 || !ok2 || to <= from {
			return nil, reject(Invalid, "invalid_value", "windows", "window %d: from and to are HH:MM with to after from (24:00 ends the day)", i+1)
		}
		if len(w.Days) == 0 {
			return nil, reject(Invalid, "invalid_value", "windows", "window %d names no day (0 = Sunday … 6 = Saturday)", i+1)
		}
		for _, d := range w.Days {
			if d < 0 || d > 6 {
				return nil, reject(Invalid, "invalid_value", "windows", "window %d: day %d is not 0 (Sunday) to 6 (Saturday)", i+1, d)
			}
		}
	}
	for _, h := range b.Holidays {
		if _, err := time.Parse("2006-01-02", h); err != nil {
			return nil, reject(Invalid, "invalid_value", "holidays", "holiday %q is not a date (2006-01-02)", h)
		}
	}
	if _, ok := s.Schedules.Get(b.ID); ok || b.ID == "" {
		return nil, reject(Conflict, "duplicate_id", "id", "a schedule with id %s already exists", b.ID)
	}
	sc := Schedule{ID: b.ID, AccountID: b.AccountID, SiteID: b.SiteID, Name: strings.TrimSpace(b.Name), Windows: b.Windows, Holidays: b.Holidays}
	s.Schedules.Put(sc.ID, sc)
	ch.put("schedules", sc.ID)
	return sc, nil
}

func (s *State) applyCreateAccessLevel(b *command.CreateAccessLevel, ch *changes) (any, *Rejection) {
	site, ok := s.Sites.Get(b.SiteID)
	if !ok || site.AccountID != b.AccountID {
		return nil, reject(NotFound, "site_not_found", "site_id", "site %s does not exist", b.SiteID)
	}
	if r := checkName("name", b.Name); r != nil {
		return nil, r
	}
	for _, id := range b.ReaderIDs {
		if rd, ok := s.Readers.Get(id); !ok || rd.SiteID != b.SiteID {
			return nil, reject(NotFound, "reader_not_found", "reader_ids", "reader %s is not a reader of this site", id)
		}
	}
	if b.ScheduleID != "" {
		if sc, ok := s.Schedules.Get(b.ScheduleID); !ok || sc.SiteID != b.SiteID {
			return nil, reject(NotFound, "schedule_not_found", "schedule_id", "schedule %s is not a schedule of this site", b.ScheduleID)
		}
	}
	if _, ok := s.AccessLevels.Get(b.ID); ok || b.ID == "" {
		return nil, reject(Conflict, "duplicate_id", "id", "an access level with id %s already exists", b.ID)
	}
	al := AccessLevel{ID: b.ID, AccountID: b.AccountID, SiteID: b.SiteID, Name: strings.TrimSpace(b.Name),
		ReaderIDs: slices.Clone(b.ReaderIDs), ScheduleID: b.ScheduleID}
	s.AccessLevels.Put(al.ID, al)
	ch.put("access_levels", al.ID)
	return al, nil
}

// checkAccessLevels: a card's access levels exist in its site.
func (s *State) checkAccessLevels(siteID string, ids []string) *Rejection {
	for _, id := range ids {
		if al, ok := s.AccessLevels.Get(id); !ok || al.SiteID != siteID {
			return reject(NotFound, "access_level_not_found", "access_levels", "access level %s is not one of this site", id)
		}
	}
	return nil
}

// applyRecordUse counts a use of an activated card with max_uses; the last
// allowed use is the last one counted, so two readers racing for it cannot
// both open.
func (s *State) applyRecordUse(b *command.RecordUse, ch *changes) (any, *Rejection) {
	c, ok := s.Cards.Get(b.CardID)
	if !ok {
		return nil, reject(NotFound, "card_not_found", "", "card %s does not exist", b.CardID)
	}
	if b.Offline {
		// The door opened while the node was cut off: the use happened, so
		// it is counted whatever the card's status or limit is now.
		c.Uses++
		s.putCard(c, ch)
		return map[string]int64{"uses": c.Uses, "max_uses": c.MaxUses}, nil
	}
	if c.Status != CardActivated {
		return nil, reject(Conflict, "not_activated", "", "card %s is %s", c.ID, c.Status)
	}
	if c.MaxUses > 0 && c.Uses >= c.MaxUses {
		return nil, reject(Conflict, "uses_exhausted", "", "card %s has used its %d uses", c.ID, c.MaxUses)
	}
	c.Uses++
	s.putCard(c, ch)
	return map[string]int64{"uses": c.Uses, "max_uses": c.MaxUses}, nil
}

// applyArmEnrollment arms (or disarms) a reader for enrollment. The checks
// that enrollment repeats are made here too, so the operator hears of a
// problem when arming, not at the door.
func (s *State) applyArmEnrollment(c command.Command, b *command.ArmEnrollment, ch *changes) (any, *Rejection) {
	rd, ok := s.Readers.Get(b.ReaderID)
	if !ok || rd.AccountID != b.AccountID {
		return nil, reject(NotFound, "reader_not_found", "", "reader %s does not exist", b.ReaderID)
	}
	if b.Disarm {
		rd.Enrollment = nil
		s.Readers.Put(rd.ID, rd)
		ch.put("readers", rd.ID)
		return rd, nil
	}
	// The length asked for is measured on the command's own clock (Until is
	// made from it; ApplyAt bounds how far ahead it runs); whether the arm is
	// still live, on the state clock, as enrollment judges it.
	if !b.Until.After(s.Clock) || !b.Until.After(c.At) || b.Until.Sub(c.At) > MaxEnrollmentArm {
		return nil, reject(Invalid, "invalid_value", "seconds", "a reader stays armed for 10 seconds to 1 hour")
	}
	if _, rej := s.enrollmentHolder(rd, b.CardholderID); rej != nil {
		return nil, rej
	}
	rd.Enrollment = &Enrollment{CardholderID: b.CardholderID, Until: b.Until.UTC(), ArmedBy: c.Actor}
	s.Readers.Put(rd.ID, rd)
	ch.put("readers", rd.ID)
	return rd, nil
}

// enrollmentHolder checks that cardholder id may get a new device card at
// reader rd: it exists in the reader's account, holds no device card yet,
// and the account can pay for one.
func (s *State) enrollmentHolder(rd Reader, id string) (Cardholder, *Rejection) {
	h, ok := s.Cardholders.Get(id)
	if !ok || h.AccountID != rd.AccountID {
		return Cardholder{}, reject(NotFound, "cardholder_not_found", "cardholder_id", "cardholder %s does not exist", id)
	}
	if s.holderConfigs.At(holderConfigKey(h.ID, "")) > 0 {
		return Cardholder{}, reject(Conflict, "duplicate_card", "cardholder_id",
			"%s %s already holds a device card; revoke or delete it before enrolling a new phone", h.FirstName, h.LastName)
	}
	if _, rej := s.Accounts.At(rd.AccountID).Credits.reserve(s.Sites.At(rd.SiteID).CardCost); rej != nil {
		return Cardholder{}, rej
	}
	return h, nil
}

// applyEnrollCard binds the phone presented at an armed reader: a new
// activated device_id card, paid like an activation (reserve and debit in
// one step), and the reader disarmed.
func (s *State) applyEnrollCard(c command.Command, b *command.EnrollCard, ch *changes) (any, *Rejection) {
	rd, ok := s.Readers.Get(b.ReaderID)
	if !ok {
		return nil, reject(NotFound, "reader_not_found", "", "reader %s does not exist", b.ReaderID)
	}
	// On the state clock: a reader whose node's clock runs behind must not
	// enroll on an arm that has ended.
	if rd.Enrollment == nil || !s.Clock.Before(rd.Enrollment.Until) {
		return nil, reject(Conflict, "not_armed", "", "reader %s is not armed for enrollment", rd.ID)
	}
	if _, ok := s.Cards.Get(b.CardID); ok || b.CardID == "" {
		return nil, reject(Conflict, "duplicate_id", "card_id", "a card with id %s already exists", b.CardID)
	}
	key, err := parseDeviceKey(b.DeviceKey)
	if err != nil {
		return nil, reject(Invalid, "invalid_value", "device_key", "the phone's key is not a P-256 public key: %v", err)
	}
	sum := sha256.Sum256(command.EnrollmentMessage(b.Nonce, rd.ID, b.DeviceKey))
	if len(b.Nonce) != 16 || !ecdsa.VerifyASN1(key, sum[:], b.Signature) {
		return nil, reject(Forbidden, "bad_signature", "", "the enrollment is not signed by the key it presents")
	}
	h, rej := s.enrollmentHolder(rd, rd.Enrollment.CardholderID)
	if rej != nil {
		return nil, rej
	}
	cost := s.Sites.At(rd.SiteID).CardCost
	acc := s.Accounts.At(rd.AccountID)
	l, _ := acc.Credits.reserve(cost)
	acc.Credits = l.debit(cost)
	s.Accounts.Put(acc.ID, acc)
	ch.put("accounts", acc.ID)
	card := Card{
		ID: b.CardID, SiteID: rd.SiteID, AccountID: rd.AccountID, Kind: KindDeviceID, Status: CardActivated,
		CardholderID: h.ID, FirstName: h.FirstName, LastName: h.LastName, Email: h.Email, Phone: h.Phone,
		Credits: cost, CreatedAt: c.At.UTC(), ActivatedAt: ptime(c.At),
		Device: &Device{PublicKey: slices.Clone(b.DeviceKey), BoundAt: c.At.UTC()},
	}
	if h.Visitor {
		card.ValidFrom, card.ValidUntil = h.ValidFrom, h.ValidUntil
	}
	s.putCard(card, ch)
	rd.Enrollment = nil
	s.Readers.Put(rd.ID, rd)
	ch.put("readers", rd.ID)
	return card, nil
}
