package command

import "time"

// Accounts, operators, profiles and API tokens (SPEC 4.2, seed 003).

// CreateAccount: a reseller creates a customer account with its main
// operator (invited), that operator's Administrator profile, and an optional
// first credit transfer.
type CreateAccount struct {
	ID            string    `json:"id"`
	ParentID      string    `json:"parent_id"`
	Name          string    `json:"name"`
	Kind          string    `json:"kind"`
	FirstName     string    `json:"first_name"`
	LastName      string    `json:"last_name"`
	Email         string    `json:"email"`
	Phone         string    `json:"phone"`
	OperatorID    string    `json:"operator_id"`
	ProfileID     string    `json:"profile_id"`
	InviteHash    string    `json:"invite_hash"`
	InviteExpires time.Time `json:"invite_expires"`
	Credits       int64     `json:"credits"`
	TransferID    string    `json:"transfer_id"`
	Comment       string    `json:"comment"`
	Invitation    Message   `json:"invitation"`
}

// UpdateAccount edits a customer account; nil fields stay. The email never changes.
type UpdateAccount struct {
	ID             string  `json:"id"`
	ParentID       string  `json:"parent_id"`
	Name           *string `json:"name,omitempty"`
	FirstName      *string `json:"first_name,omitempty"`
	LastName       *string `json:"last_name,omitempty"`
	Phone          *string `json:"phone,omitempty"`
	AlertThreshold *int64  `json:"alert_threshold,omitempty"`
}

// SetAccountStatus disables or re-enables a customer account.
type SetAccountStatus struct {
	ID       string `json:"id"`
	ParentID string `json:"parent_id"`
	Enable   bool   `json:"enable"`
}

// DeleteAccount deletes a customer account; its credits are lost.
type DeleteAccount struct {
	ID       string `json:"id"`
	ParentID string `json:"parent_id"`
}

// TransferCredits moves credits from a reseller to its customer: final.
type TransferCredits struct {
	ID      string `json:"id"`
	From    string `json:"from"`
	To      string `json:"to"`
	Credits int64  `json:"credits"`
	Comment string `json:"comment"`
}

// ProfileRights is a profile's content.
type ProfileRights struct {
	Name               string              `json:"name"`
	Rights             map[string][]string `json:"rights"`
	CanOrderCredits    bool                `json:"can_order_credits"`
	CanTransferCredits bool                `json:"can_transfer_credits"`
}

// CreateProfile adds a profile to an account.
type CreateProfile struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
	ProfileRights
}

// UpdateProfile replaces a profile's name and rights.
type UpdateProfile struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
	ProfileRights
}

// DeleteProfile removes a profile no operator uses.
type DeleteProfile struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
}

// CreateOperator adds a person who logs in. With a password hash the
// operator is activated at once; otherwise an invitation is queued.
type CreateOperator struct {
	ID            string    `json:"id"`
	AccountID     string    `json:"account_id"`
	FirstName     string    `json:"first_name"`
	LastName      string    `json:"last_name"`
	Email         string    `json:"email"`
	Phone         string    `json:"phone"`
	ProfileID     string    `json:"profile_id"`
	SiteIDs       []string  `json:"site_ids,omitempty"`
	PasswordHash  string    `json:"password_hash,omitempty"`
	InviteHash    string    `json:"invite_hash,omitempty"`
	InviteExpires time.Time `json:"invite_expires"`
	Invitation    Message   `json:"invitation"`
}

// UpdateOperator edits an operator; nil fields stay. The email never changes.
type UpdateOperator struct {
	ID        string    `json:"id"`
	AccountID string    `json:"account_id"`
	FirstName *string   `json:"first_name,omitempty"`
	LastName  *string   `json:"last_name,omitempty"`
	Phone     *string   `json:"phone,omitempty"`
	ProfileID *string   `json:"profile_id,omitempty"`
	SiteIDs   *[]string `json:"site_ids,omitempty"`
}

// SetOperatorStatus disables or re-enables an operator.
type SetOperatorStatus struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
	Enable    bool   `json:"enable"`
}

// DeleteOperator removes an operator and ends their sessions and tokens.
type DeleteOperator struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
}

// AcceptInvitation sets an invited operator's password: created → activated.
type AcceptInvitation struct {
	InviteHash   string `json:"invite_hash"`
	PasswordHash string `json:"password_hash"`
}

// CreateToken makes an API token bound to an operator; only its hash is kept.
type CreateToken struct {
	ID         string `json:"id"`
	OperatorID string `json:"operator_id"`
	Name       string `json:"name"`
	TokenHash  string `json:"token_hash"`
}

// DeleteToken revokes an API token.
type DeleteToken struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
}

func (*CreateAccount) CommandType() Type     { return TypeCreateAccount }
func (*UpdateAccount) CommandType() Type     { return TypeUpdateAccount }
func (*SetAccountStatus) CommandType() Type  { return TypeSetAccountStatus }
func (*DeleteAccount) CommandType() Type     { return TypeDeleteAccount }
func (*TransferCredits) CommandType() Type   { return TypeTransferCredits }
func (*CreateProfile) CommandType() Type     { return TypeCreateProfile }
func (*UpdateProfile) CommandType() Type     { return TypeUpdateProfile }
func (*DeleteProfile) CommandType() Type     { return TypeDeleteProfile }
func (*CreateOperator) CommandType() Type    { return TypeCreateOperator }
func (*UpdateOperator) CommandType() Type    { return TypeUpdateOperator }
func (*SetOperatorStatus) CommandType() Type { return TypeSetOperatorStatus }
func (*DeleteOperator) CommandType() Type    { return TypeDeleteOperator }
func (*AcceptInvitation) CommandType() Type  { return TypeAcceptInvitation }
func (*CreateToken) CommandType() Type       { return TypeCreateToken }
func (*DeleteToken) CommandType() Type       { return TypeDeleteToken }
