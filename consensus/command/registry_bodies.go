package command

import "time"

// The credential registry and the credit ledger (SPEC sections 4.3–4.7, 5.4).

// AddIssuer trusts a credit-issuer public key (Ed25519) for vouchers.
type AddIssuer struct {
	KeyID     string `json:"key_id"`
	PublicKey []byte `json:"public_key"`
	Name      string `json:"name"`
}

// LoadVoucher loads a signed voucher's credits into AccountID. The state
// verifies the signature itself, so the log alone decides.
type LoadVoucher struct {
	AccountID string `json:"account_id"`
	Voucher   []byte `json:"voucher"`
}

// SetAlertThreshold sets an account's credit alert threshold.
type SetAlertThreshold struct {
	AccountID string `json:"account_id"`
	Threshold int64  `json:"threshold"`
}

// UpdateSite changes a site's settings; nil fields stay as they are.
type UpdateSite struct {
	ID                  string         `json:"id"`
	AccountID           string         `json:"account_id"`
	PrivateIDDuplicates *bool          `json:"private_id_duplicates,omitempty"`
	CardCost            *int64         `json:"card_cost,omitempty"`
	ActivationTTL       *time.Duration `json:"activation_ttl,omitempty"`
	OfflineGrace        *time.Duration `json:"offline_grace,omitempty"`
	OfflinePolicy       *string        `json:"offline_policy,omitempty"`
	TimeZone            *string        `json:"time_zone,omitempty"`
}

// CreateCardholder adds a person (or a visitor with a validity window).
type CreateCardholder struct {
	ID         string            `json:"id"`
	AccountID  string            `json:"account_id"`
	FirstName  string            `json:"first_name"`
	LastName   string            `json:"last_name"`
	Email      string            `json:"email"`
	Phone      string            `json:"phone"`
	Fields     map[string]string `json:"fields,omitempty"`
	Visitor    bool              `json:"visitor"`
	ValidFrom  *time.Time        `json:"valid_from,omitempty"`
	ValidUntil *time.Time        `json:"valid_until,omitempty"`
}

// CreateCard adds a virtual user card in status created.
type CreateCard struct {
	ID           string `json:"id"`
	SiteID       string `json:"site_id"`
	AccountID    string `json:"account_id"`
	Kind         string `json:"kind"` // private_id or device_id
	ReaderConfig string `json:"reader_config"`
	PrivateID    string `json:"private_id"`
	CardholderID string `json:"cardholder_id"`
	// A new cardholder made with the card, when CardholderID is empty.
	NewCardholder *CreateCardholder `json:"new_cardholder,omitempty"`
	ValidFrom     *time.Time        `json:"valid_from,omitempty"`
	ValidUntil    *time.Time        `json:"valid_until,omitempty"`
	MaxUses       int64             `json:"max_uses"`
	AccessLevels  []string          `json:"access_levels,omitempty"`
	Fields        map[string]string `json:"fields,omitempty"`
}

// SendCard reserves the card's credits (first send) and queues the
// activation message. Only the hash of the link's token is kept on the card.
type SendCard struct {
	ID          string    `json:"id"`
	AccountID   string    `json:"account_id"`
	LinkHash    string    `json:"link_hash"`
	LinkExpires time.Time `json:"link_expires"`
	Message     Message   `json:"message"`
}

// Message is an outbox message made with the command that queues it.
type Message struct {
	ID      string `json:"id"`
	To      string `json:"to"`
	Subject string `json:"subject" max:"2000"` // made by the node from a template (200) and names
	Body    string `json:"body" max:"20000"`   // a template (10 000) with its placeholders filled
}

// ActivateCard redeems an activation link: it binds the phone's P-256
// public key (PKIX DER) to the card and turns the reservation into a debit.
type ActivateCard struct {
	LinkHash  string `json:"link_hash"`
	DeviceKey []byte `json:"device_key"`
}

// ExpireLinks moves sent cards whose link has expired (on the state clock,
// the leader's stamp) to expired and releases their reservations. The leader
// issues it.
type ExpireLinks struct{}

// RevokeCard starts a revoke: from its commit every reader denies the card.
type RevokeCard struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
}

// ConfirmRevoke is the phone's signed deletion receipt: an ECDSA P-256
// signature by the card's bound key over DeletionReceiptMessage(card id).
type ConfirmRevoke struct {
	CardID    string `json:"card_id"`
	Signature []byte `json:"signature"`
}

// DeletionReceiptMessage is what a phone signs to confirm it deleted a card.
func DeletionReceiptMessage(cardID string) []byte {
	return []byte("lintel-deletion-receipt 1\n" + cardID)
}

// MarkLost marks a revoked or pending-revoke card lost.
type MarkLost struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
}

// DeleteCard removes a card from the registry.
type DeleteCard struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
}

// UpdateCard changes a card's fields; nil fields stay. Which fields may
// change depends on the status (seed 003, "Modifying a virtual user card").
type UpdateCard struct {
	ID           string             `json:"id"`
	AccountID    string             `json:"account_id"`
	FirstName    *string            `json:"first_name,omitempty"`
	LastName     *string            `json:"last_name,omitempty"`
	Email        *string            `json:"email,omitempty"`
	Phone        *string            `json:"phone,omitempty"`
	ReaderConfig *string            `json:"reader_config,omitempty"`
	Kind         *string            `json:"kind,omitempty"`
	PrivateID    *string            `json:"private_id,omitempty"`
	ValidFrom    *time.Time         `json:"valid_from,omitempty"`
	ValidUntil   *time.Time         `json:"valid_until,omitempty"`
	MaxUses      *int64             `json:"max_uses,omitempty"`
	AccessLevels *[]string          `json:"access_levels,omitempty"`
	Fields       *map[string]string `json:"fields,omitempty"`
}

func (*AddIssuer) CommandType() Type         { return TypeAddIssuer }
func (*LoadVoucher) CommandType() Type       { return TypeLoadVoucher }
func (*SetAlertThreshold) CommandType() Type { return TypeSetAlertThreshold }
func (*UpdateSite) CommandType() Type        { return TypeUpdateSite }
func (*CreateCardholder) CommandType() Type  { return TypeCreateCardholder }
func (*CreateCard) CommandType() Type        { return TypeCreateCard }
func (*SendCard) CommandType() Type          { return TypeSendCard }
func (*ActivateCard) CommandType() Type      { return TypeActivateCard }
func (*ExpireLinks) CommandType() Type       { return TypeExpireLinks }
func (*RevokeCard) CommandType() Type        { return TypeRevokeCard }
func (*ConfirmRevoke) CommandType() Type     { return TypeConfirmRevoke }
func (*MarkLost) CommandType() Type          { return TypeMarkLost }
func (*DeleteCard) CommandType() Type        { return TypeDeleteCard }
func (*UpdateCard) CommandType() Type        { return TypeUpdateCard }

// MessageDelivered records that the leader's mailer handed a message to the
// relay. The body's activation link is then redacted: it rests in clear only
// while it waits to be delivered.
type MessageDelivered struct {
	ID string `json:"id"`
}

// MessageFailed records a failed delivery attempt; the mailer retries with backoff.
type MessageFailed struct {
	ID    string `json:"id"`
	Error string `json:"error"`
	Final bool   `json:"final"` // no more attempts: the operator hands the link out
}

func (*MessageDelivered) CommandType() Type { return TypeMessageDelivered }
func (*MessageFailed) CommandType() Type    { return TypeMessageFailed }

// CreateReaderConfig imports a reader configuration file (SPEC 6.2). The
// state parses the file itself, so every node holds the same settings.
type CreateReaderConfig struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
	SiteID    string `json:"site_id"`
	Source    string `json:"source" max:"1048576"` // the parser refuses over readerconfig.MaxSize, naming the line
}

// DeleteReaderConfig removes a configuration no card or configurator uses.
type DeleteReaderConfig struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
}

func (*CreateReaderConfig) CommandType() Type { return TypeCreateReaderConfig }
func (*DeleteReaderConfig) CommandType() Type { return TypeDeleteReaderConfig }

// ImportCards creates many cards at once, all or none (SPEC 4.4, import).
// The API checks the whole file first and sends it in batches.
type ImportCards struct {
	Cards []CreateCard `json:"cards"`
}

func (*ImportCards) CommandType() Type { return TypeImportCards }

// UpdateCardholder edits a person; nil fields stay.
type UpdateCardholder struct {
	ID         string             `json:"id"`
	AccountID  string             `json:"account_id"`
	FirstName  *string            `json:"first_name,omitempty"`
	LastName   *string            `json:"last_name,omitempty"`
	Email      *string            `json:"email,omitempty"`
	Phone      *string            `json:"phone,omitempty"`
	Fields     *map[string]string `json:"fields,omitempty"`
	ValidFrom  *time.Time         `json:"valid_from,omitempty"`
	ValidUntil *time.Time         `json:"valid_until,omitempty"`
}

// DeleteCardholder deletes a person and their cards by the card rules.
type DeleteCardholder struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
}

// CreateConfigurator adds a person who receives configuration cards (seed 003).
type CreateConfigurator struct {
	ID        string            `json:"id"`
	AccountID string            `json:"account_id"`
	SiteID    string            `json:"site_id"`
	FirstName string            `json:"first_name"`
	LastName  string            `json:"last_name"`
	Email     string            `json:"email"`
	Phone     string            `json:"phone"`
	Fields    map[string]string `json:"fields,omitempty"`
}

// UpdateConfigurator edits a configurator; the email never changes.
type UpdateConfigurator struct {
	ID        string             `json:"id"`
	AccountID string             `json:"account_id"`
	FirstName *string            `json:"first_name,omitempty"`
	LastName  *string            `json:"last_name,omitempty"`
	Phone     *string            `json:"phone,omitempty"`
	Fields    *map[string]string `json:"fields,omitempty"`
}

// DeleteConfigurator removes a configurator who holds no configuration card.
type DeleteConfigurator struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
}

// CreateConfigCard assigns a reader configuration to a configurator: a
// configuration card in status created, free of credits. It is sent,
// activated, revoked and deleted with the card commands.
type CreateConfigCard struct {
	ID             string `json:"id"`
	AccountID      string `json:"account_id"`
	ConfiguratorID string `json:"configurator_id"`
	ReaderConfig   string `json:"reader_config"`
}

// SetTemplate sets an account's text for one kind of message (seed 003,
// "Personalization Panel"). Empty subject and body restore the default.
type SetTemplate struct {
	AccountID string `json:"account_id"`
	Kind      string `json:"kind"`
	Subject   string `json:"subject"`
	Body      string `json:"body" max:"10000"`
}

func (*UpdateCardholder) CommandType() Type   { return TypeUpdateCardholder }
func (*DeleteCardholder) CommandType() Type   { return TypeDeleteCardholder }
func (*CreateConfigurator) CommandType() Type { return TypeCreateConfigurator }
func (*UpdateConfigurator) CommandType() Type { return TypeUpdateConfigurator }
func (*DeleteConfigurator) CommandType() Type { return TypeDeleteConfigurator }
func (*CreateConfigCard) CommandType() Type   { return TypeCreateConfigCard }
func (*SetTemplate) CommandType() Type        { return TypeSetTemplate }
