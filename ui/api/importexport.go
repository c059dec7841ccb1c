package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// Exports (SPEC 4.8) and the card import (SPEC 4.4).

// routeImportCards is the one route whose body may be larger than MaxBody.
const routeImportCards = "POST /api/v1/sites/{id}/cards/import"

// uploadLimits lifts MaxBody for the routes that take files, by pattern.
var uploadLimits = map[string]int64{routeImportCards: MaxImportBody}

// bodyLimit is the body limit of the route r goes to.
func (a *API) bodyLimit(r *http.Request) int64 {
	if r.Method == http.MethodPost {
		if _, pattern := a.mux.Handler(r); pattern != "" {
			if n, ok := uploadLimits[pattern]; ok {
				return n
			}
		}
	}
	return MaxBody
}

// exportQuery is a list's ?q= and ?status=; an export has every row, so
// ?limit= and ?cursor= do not apply.
func exportQuery(r *http.Request) listQuery {
	v := r.URL.Query()
	return listQuery{Q: strings.ToLower(strings.TrimSpace(v.Get("q"))), Status: v.Get("status")}
}

// exportSites is the site list of figure 47.
func (a *API) exportSites(w http.ResponseWriter, r *http.Request, p *Principal) {
	q := exportQuery(r)
	if !a.strong(w, r) {
		return
	}
	var items []siteView
	a.svc.Read(func(s *state.State) { // the filter and order (by name) of listSites
		for _, x := range s.SitesOf(p.Account.ID) {
			if p.CanSite(x.ID) && matches(q.Q, x.Name) {
				items = append(items, viewSite(s, x))
			}
		}
	})
	sw, err := newSheetWriter("Customer Sites", 32, 18, 26, 18, 26)
	if err != nil {
		a.exportFailed(w, err)
		return
	}
	defer sw.close()
	sw.title("Dashboard - Customer Site List")
	sw.columns("Customer Site Name", "Creation Date", "Number of Configurations", "Number of Users", "Number of Configurators")
	for _, v := range items {
		sw.add(v.Name, v.CreatedAt, v.Configurations, v.Users, v.Configurators)
	}
	a.sendSheet(w, sw, "Dashboard - Customer Site List.xlsx")
}

// cardLine is what the card export and report show of a card.
type cardLine struct {
	id, first, last, email, phone, config, pid, status string
	created                                            time.Time
	activated, revoked                                 *time.Time
}

// siteCardLines lists a site's cards with the filters and order of listCards.
func (a *API) siteCardLines(siteID string, q listQuery) []cardLine {
	var out []cardLine
	a.svc.Read(func(s *state.State) {
		for c := range s.SiteCards(siteID, false, q.Status, "") {
			if cardMatches(c, q) {
				out = append(out, cardLine{id: c.ID, first: c.FirstName, last: c.LastName, email: c.Email, phone: c.Phone,
					config: c.ReaderConfig, pid: c.PrivateID, status: c.Status, created: c.CreatedAt,
					activated: c.ActivatedAt, revoked: c.RevokedAt})
			}
		}
	})
	return out // in list order (State.SiteCards)
}

// cardSheet answers the card export (figure 93) or report (figure 92).
func (a *API) cardSheet(report bool) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, p *Principal) {
		site, ok := a.findSite(w, p, r.PathValue("id"))
		if !ok {
			return
		}
		q := exportQuery(r)
		if !a.strong(w, r) {
			return
		}
		lines := a.siteCardLines(site.ID, q)
		kind := "Export"
		widths := []float64{18, 18, 30, 18, 30, 18}
		if report {
			kind = "Report"
			widths = []float64{18, 18, 30, 30, 18, 20, 20, 20, 24}
		}
		sw, err := newSheetWriter("Virtual User Cards", widths...)
		if err != nil {
			a.exportFailed(w, err)
			return
		}
		defer sw.close()
		sw.block(kind, a.now(), blockField{"Company Name", p.Account.Name}, blockField{"Site Name", site.Name})
		if report {
			sw.columns("First Name", "Last Name", "Email", "Blue Mobile ID Configuration", "Private ID/CSN",
				"VCard Creation Date", "VCard Activation Date", "VCard Revoked Date", "Status")
			for _, c := range lines {
				sw.add(c.first, c.last, c.email, c.config, c.pid, c.created, c.activated, c.revoked, CardStatusWord(c.status))
			}
		} else {
			sw.columns(importColumnNames[:]...) // the export is also the import's template
			for _, c := range lines {
				sw.add(c.first, c.last, c.email, c.phone, c.config, c.pid)
			}
		}
		a.sendSheet(w, sw, site.Name+" - Virtual User Cards "+kind+".xlsx")
	}
}

// exportOutbox is the outbox of SPEC 4.7 with the filters of listOutbox.
func (a *API) exportOutbox(w http.ResponseWriter, r *http.Request, p *Principal) {
	q := exportQuery(r)
	if !a.strong(w, r) {
		return
	}
	var items []state.Message
	a.svc.Read(func(s *state.State) {
		for _, m := range s.Outbox.All() {
			if m.AccountID == p.Account.ID && (q.Status == "" || m.Status == q.Status) && matches(q.Q, m.To, m.Subject, m.Status) {
				items = append(items, m)
			}
		}
	})
	sort.Slice(items, func(i, j int) bool {
		if !items[i].CreatedAt.Equal(items[j].CreatedAt) {
			return items[i].CreatedAt.Before(items[j].CreatedAt)
		}
		return items[i].ID < items[j].ID
	})
	sw, err := newSheetWriter("Outbox", 30, 44, 12, 10, 18, 18)
	if err != nil {
		a.exportFailed(w, err)
		return
	}
	defer sw.close()
	sw.block("Export", a.now(), blockField{"Company Name", p.Account.Name})
	sw.columns("To", "Subject", "Status", "Attempts", "Created", "Sent")
	for _, m := range items {
		sw.add(m.To, m.Subject, wordOf(messageStatusWords, m.Status), m.Attempts, m.CreatedAt, m.SentAt)
	}
	a.sendSheet(w, sw, "Outbox.xlsx")
}

// sendSheet finishes an export and sends it.
func (a *API) sendSheet(w http.ResponseWriter, sw *sheetWriter, filename string) {
	b, err := sw.finish()
	if err != nil {
		a.exportFailed(w, err)
		return
	}
	if err := writeSheet(w, b, filename); err != nil {
		a.log.Debug("export not delivered", "file", filename, "err", err) // the client went away
	}
}

func (a *API) exportFailed(w http.ResponseWriter, err error) {
	a.log.Error("export failed", "err", err)
	writeError(w, http.StatusInternalServerError, "export_failed", "", "the spreadsheet could not be made: "+err.Error())
}

// importCards is POST /api/v1/sites/{id}/cards/import: every row is checked
// (on its own, then against the registry with State.CheckImport) before
// anything is written; then the cards go out as all-or-none batches.
func (a *API) importCards(w http.ResponseWriter, r *http.Request, p *Principal) {
	site, ok := a.findSite(w, p, r.PathValue("id"))
	if !ok {
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > 200 {
		writeError(w, http.StatusBadRequest, "invalid_header", "Idempotency-Key", "the Idempotency-Key header is longer than 200 characters")
		return
	}
	data, e := readUpload(r)
	if e != nil {
		writeError(w, e.status, e.code, "", e.msg)
		return
	}
	t, h, closeFile, e := openImport(r.Header.Get("Content-Type"), data)
	if e != nil {
		writeError(w, e.status, e.code, "", e.msg)
		return
	}
	file, e := readImport(t, h, site.ID, p.Account.ID)
	closeFile()
	if e != nil {
		writeError(w, e.status, e.code, "", e.msg)
		return
	}

	batches := cutBatches(file.cards)
	batchKeys := make([]string, len(batches))
	if key != "" {
		for i, b := range batches {
			batchKeys[i] = batchKey(key, i, file.cards[b.start:b.end])
		}
	}
	done := make([]int, len(batches)) // cards a batch created in an earlier try; -1: not applied
	var rowErrs []state.RowError
	var checked []int // index in file.cards of each card CheckImport saw
	a.svc.Read(func(s *state.State) {
		retry := false
		for i, b := range batches {
			done[i] = -1
			if key != "" && file.invalid == 0 {
				if res, ok := s.DedupResult(idempotentRequestID(p.Operator.ID, batchKeys[i])); ok && res.Err == nil {
					done[i] = createdCount(res.Value)
					retry = true
					continue
				}
			}
			for j := b.start; j < b.end; j++ {
				checked = append(checked, j)
			}
		}
		cards := file.cards
		if retry { // the batches already applied are in the registry now: check the others
			cards = make([]command.CreateCard, len(checked))
			for n, j := range checked {
				cards[n] = file.cards[j]
			}
		}
		// The text bounds every write passes (state.Admit), row by row here,
		// so a file is refused whole rather than stopped part way.
		for n := range cards {
			if rej := state.Admit(command.Command{Body: &cards[n]}); rej != nil {
				rowErrs = append(rowErrs, state.RowError{Row: n, Rejection: rej})
			}
		}
		if len(rowErrs) > 0 {
			return
		}
		hdr := command.Header{RequestID: newID(), Actor: p.Operator.ID, At: a.now().UTC()}
		rowErrs = s.CheckImport(hdr, cards)
	})
	if file.invalid+len(rowErrs) > 0 {
		writeInvalidRows(w, file, rowErrs, checked)
		return
	}

	created := 0
	for i, b := range batches {
		if done[i] >= 0 {
			created += done[i]
			continue
		}
		br := r
		if key != "" {
			br = r.Clone(r.Context())
			br.Header.Set("Idempotency-Key", batchKeys[i])
		}
		var answer capture
		val, ok := a.write(&answer, br, p, &command.ImportCards{Cards: file.cards[b.start:b.end]})
		if !ok {
			writeImportStopped(w, &answer, file, b, created, key != "")
			return
		}
		created += createdCount(val)
	}
	writeJSON(w, http.StatusCreated, map[string]int{"created": created})
}

// readUpload reads the whole body: a workbook is a zip, read from its end.
func readUpload(r *http.Request) ([]byte, *uploadError) {
	tooBig := &uploadError{status: http.StatusRequestEntityTooLarge, code: "body_too_large",
		msg: fmt.Sprintf("the file is over the %d MiB limit; split it into smaller files", MaxImportBody>>20)}
	if r.ContentLength > MaxImportBody {
		return nil, tooBig
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(r.Body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooBig
		}
		return nil, badFile("upload_failed", "the file did not arrive whole: %v", err)
	}
	if buf.Len() == 0 {
		return nil, badFile("empty_file", "the request body is empty; send the xlsx or csv file as the body")
	}
	return buf.Bytes(), nil
}

// batchKey is the Idempotency-Key of batch i of an import sent with key.
// It covers the batch's rows, so a retry of the same file skips the batches
// that were applied, and a file changed since then is checked afresh.
func batchKey(key string, i int, cards []command.CreateCard) string {
	k := sha256.Sum256([]byte(key))
	h := sha256.New()
	for _, c := range cards {
		var holder command.CreateCardholder
		if c.NewCardholder != nil {
			holder = *c.NewCardholder
		}
		for _, s := range []string{holder.FirstName, holder.LastName, holder.Email, holder.Phone, c.ReaderConfig, c.PrivateID} {
			h.Write([]byte(s))
			h.Write([]byte{0})
		}
	}
	return "import-" + hex.EncodeToString(k[:12]) + "-" + strconv.Itoa(i) + "-" + hex.EncodeToString(h.Sum(nil)[:12])
}

// idempotentRequestID is the request id API.write derives from an
// Idempotency-Key; the import looks its batches up with it.
// idempotentRequestID is the request id an Idempotency-Key stands for: per
// operator, so two operators' keys never collide.
func idempotentRequestID(operatorID, key string) string {
	sum := sha256.Sum256([]byte(operatorID + "\n" + key))
	return "idem-" + hex.EncodeToString(sum[:16])
}

func createdCount(val json.RawMessage) int {
	var v struct {
		Created int `json:"created"`
	}
	json.Unmarshal(val, &v)
	return v.Created
}

// writeInvalidRows refuses the whole file with the first row errors, in row order.
func writeInvalidRows(w http.ResponseWriter, file *importFile, rowErrs []state.RowError, checked []int) {
	checkErrs := make([]rowError, 0, min(len(rowErrs), maxImportErrors))
	for _, re := range rowErrs {
		if len(checkErrs) == maxImportErrors {
			break
		}
		j := checked[re.Row]
		row := file.rows[j]
		msg := re.Rejection.Message
		if re.Rejection.Code == "duplicate_private_id" {
			c := file.cards[j]
			if first := file.firstRow[c.ReaderConfig+"\x00"+c.PrivateID]; first != 0 && first != row {
				msg += fmt.Sprintf(" (row %d of this file has the same private id)", first)
			}
		}
		checkErrs = append(checkErrs, rowError{Row: row, Field: re.Rejection.Field, Code: re.Rejection.Code, Message: msg})
	}
	// Both lists are in row order; merge them and keep the first ones.
	merged := make([]rowError, 0, maxImportErrors)
	a, b := file.errs, checkErrs
	for len(merged) < maxImportErrors && (len(a) > 0 || len(b) > 0) {
		if len(b) == 0 || (len(a) > 0 && a[0].Row <= b[0].Row) {
			merged, a = append(merged, a[0]), a[1:]
		} else {
			merged, b = append(merged, b[0]), b[1:]
		}
	}
	n := file.invalid + len(rowErrs)
	msg := fmt.Sprintf("%d rows are invalid; nothing was imported", n)
	if n == 1 {
		msg = "1 row is invalid; nothing was imported"
	}
	if n > len(merged) {
		msg += fmt.Sprintf(" (the first %d reasons are listed)", len(merged))
	}
	writeJSON(w, http.StatusBadRequest, struct {
		Error errorDetail `json:"error"`
		Rows  []rowError  `json:"rows"`
	}{errorDetail{Code: "invalid_rows", Message: msg}, merged})
}

// capture keeps the answer API.write gives to a refused batch, so the
// import can say how far it got.
type capture struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *capture) Header() http.Header {
	if c.header == nil {
		c.header = http.Header{}
	}
	return c.header
}

func (c *capture) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *capture) Write(b []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	return c.body.Write(b)
}

// writeImportStopped answers a batch that was refused or failed: the earlier
// batches stay applied (each is all-or-none, the file is not), so the answer
// says how many cards were created and how to finish.
func writeImportStopped(w http.ResponseWriter, answer *capture, file *importFile, b importBatch, created int, withKey bool) {
	var e errorBody
	json.Unmarshal(answer.body.Bytes(), &e)
	msg := strings.TrimSuffix(batchRowToSheetRow(e.Error.Message, file.rows[b.start:b.end]), ".")
	status := answer.status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if created > 0 && b.start > 0 {
		last := file.rows[b.start-1]
		msg += fmt.Sprintf(". The %d cards of the rows up to row %d were imported before this; ", created, last)
		switch {
		case status == http.StatusServiceUnavailable && withKey:
			msg += "send the same file again with the same Idempotency-Key to import the rest"
		case status == http.StatusServiceUnavailable:
			msg += fmt.Sprintf("the rows from row %d on may or may not be: look at the site's cards before sending them again, and send imports with an Idempotency-Key so that a retry is safe", file.rows[b.start])
		default:
			msg += fmt.Sprintf("the rest was not: remove the rows up to row %d from the file, correct it and send the rest", last)
		}
	}
	if ra := answer.Header().Get("Retry-After"); ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	writeJSON(w, status, struct {
		Error   errorDetail `json:"error"`
		Created int         `json:"created"`
	}{errorDetail{Code: e.Error.Code, Message: msg, Field: e.Error.Field}, created})
}

// batchRowToSheetRow turns the state's "row N: " (N counts from 0 in the
// batch) into the row number a person sees.
func batchRowToSheetRow(msg string, rows []int) string {
	rest, ok := strings.CutPrefix(msg, "row ")
	if !ok {
		return msg
	}
	num, tail, ok := strings.Cut(rest, ": ")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n < 0 || n >= len(rows) {
		return msg
	}
	return "row " + strconv.Itoa(rows[n]) + ": " + tail
}
