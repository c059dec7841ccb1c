package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"lintel/consensus/state"
	"lintel/ui/api"
)

// CreditsPage is the account's credit (seed 003, "Available credit").
type CreditsPage struct {
	Ledger     state.Ledger
	LastLoaded *time.Time
	CanLoad    bool // the profile may order credits
	CanEdit    bool // the alert threshold
	Error      string
	Notice     string
}

func (c *Console) creditsPage(p *api.Principal) CreditsPage {
	v := CreditsPage{CanLoad: p.Profile.CanOrderCredits && p.Profile.Allows("credits", "create"), CanEdit: p.Profile.Allows("credits", "edit")}
	c.svc.Read(func(s *state.State) { v.Ledger = s.Accounts.At(p.Account.ID).Credits })
	if v.Ledger.LastLoaded != nil {
		t := v.Ledger.LastLoaded.In(c.loc)
		v.LastLoaded = &t
	}
	return v
}

// credits serves GET /credits.
func (c *Console) credits(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	notice := ""
	switch r.URL.Query().Get("done") {
	case "voucher":
		notice = "The voucher was loaded."
	case "threshold":
		notice = "The alert threshold was saved."
	}
	c.showCredits(w, r, p, nil, notice)
}

func (c *Console) showCredits(w http.ResponseWriter, r *http.Request, p *api.Principal, ref *refusal, notice string) {
	if !p.Profile.Allows("credits", "view") {
		c.forbidden(w, r, p, "Your profile does not allow viewing the credits; ask an administrator.")
		return
	}
	v := c.creditsPage(p)
	status := http.StatusOK
	if ref != nil {
		status, v.Error = ref.status, ref.message
	}
	v.Notice = notice
	ch := c.chrome(r, p, "credits")
	ch.LiveURL = "/ws?view=credits"
	render(w, r, status, CreditsView(ch, v))
}

// loadVoucher serves POST /credits/vouchers: the voucher as a file or pasted.
func (c *Console) loadVoucher(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	if !p.Profile.CanOrderCredits || !p.Profile.Allows("credits", "create") {
		c.forbidden(w, r, p, "Your profile may not order credits; ask an administrator.")
		return
	}
	text, err := uploaded(r, "file", 8<<10)
	switch {
	case errors.Is(err, errNoFile):
		text = []byte(strings.TrimSpace(r.FormValue("voucher")))
	case err != nil:
		c.showCredits(w, r, p, &refusal{http.StatusBadRequest, sentence(err.Error())}, "")
		return
	}
	if len(text) == 0 {
		c.showCredits(w, r, p, &refusal{http.StatusBadRequest, "Choose the voucher file, or paste its text, then Load."}, "")
		return
	}
	if _, _, ref := c.callAPI(r, http.MethodPost, "/api/v1/credits/vouchers", bytes.NewReader(text), "text/plain"); ref != nil {
		c.showCredits(w, r, p, ref, "")
		return
	}
	http.Redirect(w, r, "/credits?done=voucher", http.StatusSeeOther)
}

// setThreshold serves POST /credits/threshold.
func (c *Console) setThreshold(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	if err := r.ParseForm(); err != nil {
		c.showCredits(w, r, p, &refusal{http.StatusBadRequest, formError(err)}, "")
		return
	}
	n, err := strconv.ParseInt(strings.TrimSpace(r.PostForm.Get("alert_threshold")), 10, 64)
	if err != nil || n < 0 {
		c.showCredits(w, r, p, &refusal{http.StatusBadRequest, "Enter the alert threshold as a whole number of credits, 0 for no alert."}, "")
		return
	}
	b, _ := json.Marshal(map[string]int64{"alert_threshold": n})
	if _, _, ref := c.callAPI(r, http.MethodPatch, "/api/v1/credits", bytes.NewReader(b), "application/json"); ref != nil {
		c.showCredits(w, r, p, ref, "")
		return
	}
	http.Redirect(w, r, "/credits?done=threshold", http.StatusSeeOther)
}

type creditsLive struct{ c *Console }

func (v creditsLive) fragments(ctx context.Context, p *api.Principal, changes []state.Change, w *bytes.Buffer) error {
	if !touches(changes, "accounts") {
		return nil
	}
	return CreditFigures(v.c.creditsPage(p)).Render(ctx, w)
}

// OutboxRow is one queued or sent message, with the link it carries.
type OutboxRow struct {
	ID, To, Subject, Status string
	CreatedAt               time.Time
	Link                    string
}

// linkRE finds the activation or invitation link in a message.
var linkRE = regexp.MustCompile(`https?://\S+/(?:activate|invitation)/[A-Za-z0-9_-]+(?:#ca=sha256:[0-9a-f]+)?`)

// outboxLimit is how many of the newest messages the page lists.
const outboxLimit = 200

func (c *Console) outboxRows(p *api.Principal) []OutboxRow {
	var rows []OutboxRow
	c.svc.Read(func(s *state.State) {
		for _, m := range s.Outbox.All() {
			if !api.MaySeeMessage(s, p, m) {
				continue
			}
			rows = append(rows, OutboxRow{ID: m.ID, To: m.To, Subject: m.Subject, Status: m.Status, CreatedAt: m.CreatedAt.In(c.loc), Link: linkRE.FindString(m.Body)})
		}
	})
	slices.SortFunc(rows, func(a, b OutboxRow) int { return b.CreatedAt.Compare(a.CreatedAt) })
	if len(rows) > outboxLimit {
		rows = rows[:outboxLimit]
	}
	return rows
}

// outbox serves GET /outbox: every message with its link, so that on a site
// without a mail relay an operator can hand the link out (copy or QR code).
func (c *Console) outbox(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	if !p.Profile.Allows("cards", "view") {
		c.forbidden(w, r, p, "Your profile does not allow viewing the messages; ask an administrator.")
		return
	}
	ch := c.chrome(r, p, "outbox")
	ch.LiveURL = "/ws?view=outbox"
	render(w, r, http.StatusOK, OutboxPage(ch, c.outboxRows(p)))
}

// outboxQR serves GET /outbox/{id}/qr.png: the message's link as a QR code
// for the holder's phone camera, drawn on the node.
func (c *Console) outboxQR(w http.ResponseWriter, r *http.Request, p *api.Principal) {
	if !p.Profile.Allows("cards", "view") {
		http.Error(w, "not allowed", http.StatusForbidden)
		return
	}
	var link string
	c.svc.Read(func(s *state.State) {
		if m, ok := s.Outbox.Get(r.PathValue("id")); ok && api.MaySeeMessage(s, p, m) {
			link = linkRE.FindString(m.Body)
		}
	})
	if link == "" {
		http.NotFound(w, r)
		return
	}
	png, err := qrcode.Encode(link, qrcode.Medium, 256)
	if err != nil {
		http.Error(w, "the code could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store") // the link is a credential
	w.Write(png)
}

type outboxLive struct{ c *Console }

func (v outboxLive) fragments(ctx context.Context, p *api.Principal, changes []state.Change, w *bytes.Buffer) error {
	if !touches(changes, "outbox") {
		return nil
	}
	return OutboxTable(v.c.outboxRows(p)).Render(ctx, w)
}
