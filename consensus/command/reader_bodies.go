package command

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
}

func (*RecordUse) CommandType() Type { return TypeRecordUse }
