package api

import (
	"net/http"

	"github.com/xuri/excelize/v2"

	"lintel/consensus/state"
)

// The exports of the "Manage my account" lists (SPEC 4.8, seed 003): the
// account history (figure 9), users and profiles (figure 22), customer
// accounts (figure 34) and the credit transfer history (figure 37). Each
// shows the rows of its JSON list, filters included, without ?limit= and
// ?cursor=.

// accountStatusWords are the console's words for operator and account
// statuses (seed 003 "Users" and "Customer Accounts").
var accountStatusWords = map[string]string{
	state.OperatorCreated:   "Created",
	state.OperatorActivated: "Activated",
	state.OperatorDisabled:  "Disabled",
}

// accountKindWords are the "Profile" words of the customer account list.
var accountKindWords = map[string]string{
	state.AccountEndCustomer: "End Customer",
	state.AccountReseller:    "Reseller",
}

// exportHistory is GET /api/v1/history/export.xlsx (figure 9).
func (a *API) exportHistory(w http.ResponseWriter, r *http.Request, p *Principal) {
	q := exportQuery(r)
	from, to, ok := dateRange(w, r)
	if !ok || !a.strong(w, r) {
		return
	}
	items, err := a.historyLines(p, q, from, to)
	if err != nil {
		a.historyFailed(w, err)
		return
	}
	sw, err := newSheetWriter("Account History", 18, 22, 60, 24)
	if err != nil {
		a.exportFailed(w, err)
		return
	}
	defer sw.close()
	// Figure 9 has its title over the Action column.
	sw.setRow([]any{nil, nil, excelize.Cell{StyleID: sw.bold, Value: "Account History"}})
	sw.columns("Time Stamp", "Page", "Action", "Performed By")
	for _, v := range items {
		sw.add(v.At, v.Area, v.Action, v.PerformedBy)
	}
	a.sendSheet(w, sw, "Account History.xlsx")
}

// exportTransfers is GET /api/v1/transfers/export.xlsx (figure 37).
func (a *API) exportTransfers(w http.ResponseWriter, r *http.Request, p *Principal) {
	q := exportQuery(r)
	from, to, ok := dateRange(w, r)
	if !ok || !a.strong(w, r) {
		return
	}
	items := a.transferLines(p, q, from, to)
	sw, err := newSheetWriter("Credit Transfer History", 18, 30, 24, 10, 40)
	if err != nil {
		a.exportFailed(w, err)
		return
	}
	defer sw.close()
	sw.title("Credit Transfer History")
	sw.columns("Time Stamp", "Transferred To", "Transferred By", "Credits", "Comment")
	for _, v := range items {
		sw.add(v.At, v.TransferredTo, v.TransferredBy, v.Credits, v.Comment)
	}
	a.sendSheet(w, sw, "Credit Transfer History.xlsx")
}

// exportOperators is GET /api/v1/operators/export.xlsx (figure 22). The
// operators have no Field 1 and Field 2 yet; the columns stay, empty, so the
// sheet reads as the seed's.
func (a *API) exportOperators(w http.ResponseWriter, r *http.Request, p *Principal) {
	q := exportQuery(r)
	if !a.strong(w, r) {
		return
	}
	items := a.accountOperators(p, q)
	sw, err := newSheetWriter("Users and Profiles", 20, 18, 18, 30, 18, 18, 12)
	if err != nil {
		a.exportFailed(w, err)
		return
	}
	defer sw.close()
	sw.title("Users and Profiles")
	sw.columns("Profile", "First Name", "Last Name", "Email", "Field 1", "Field 2", "Status")
	for _, v := range items {
		sw.add(v.Profile, v.FirstName, v.LastName, v.Email, "", "", wordOf(accountStatusWords, v.Status))
	}
	a.sendSheet(w, sw, "Users and Profiles.xlsx")
}

// exportAccounts is GET /api/v1/accounts/export.xlsx (figure 34); the
// number of credits is the account's balance.
func (a *API) exportAccounts(w http.ResponseWriter, r *http.Request, p *Principal) {
	q := exportQuery(r)
	if !a.strong(w, r) {
		return
	}
	items := a.customerAccounts(p, q)
	sw, err := newSheetWriter("Customer Accounts", 30, 14, 18, 18, 12, 18)
	if err != nil {
		a.exportFailed(w, err)
		return
	}
	defer sw.close()
	sw.title("Customer Accounts")
	sw.columns("Company Name", "Profile", "First Name", "Last Name", "Status", "Number of Credits")
	for _, v := range items {
		sw.add(v.Name, wordOf(accountKindWords, v.Kind), v.FirstName, v.LastName, wordOf(accountStatusWords, v.Status), v.Credits.Balance)
	}
	a.sendSheet(w, sw, "Customer Accounts.xlsx")
}
