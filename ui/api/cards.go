package api

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// cardView is a card as SPEC 4.4 writes it. The link hash never leaves the node.
type cardView struct {
	ID           string            `json:"id"`
	SiteID       string            `json:"site_id"`
	Kind         string            `json:"kind"`
	Status       string            `json:"status"`
	ReaderConfig string            `json:"reader_config"`
	PrivateID    string            `json:"private_id"`
	CardholderID string            `json:"cardholder_id"`
	FirstName    string            `json:"first_name"`
	LastName     string            `json:"last_name"`
	Email        string            `json:"email"`
	Phone        string            `json:"phone"`
	ValidFrom    *time.Time        `json:"valid_from"`
	ValidUntil   *time.Time        `json:"valid_until"`
	MaxUses      int64             `json:"max_uses"`
	Uses         int64             `json:"uses"`
	AccessLevels []string          `json:"access_levels"`
	Fields       map[string]string `json:"fields"`
	Credits      int64             `json:"credits"`
	CreatedAt    time.Time         `json:"created_at"`
	SentAt       *time.Time        `json:"sent_at"`
	ActivatedAt  *time.Time        `json:"activated_at"`
	RevokedAt    *time.Time        `json:"revoked_at"`
	Device       *deviceView       `json:"device"`
}

type deviceView struct {
	PublicKey string    `json:"public_key"` // base64 PKIX DER
	BoundAt   time.Time `json:"bound_at"`
}

func viewCard(c state.Card) cardView {
	v := cardView{
		ID: c.ID, SiteID: c.SiteID, Kind: c.Kind, Status: c.Status, ReaderConfig: c.ReaderConfig, PrivateID: c.PrivateID,
		CardholderID: c.CardholderID, FirstName: c.FirstName, LastName: c.LastName, Email: c.Email, Phone: c.Phone,
		ValidFrom: c.ValidFrom, ValidUntil: c.ValidUntil, MaxUses: c.MaxUses, Uses: c.Uses, AccessLevels: c.AccessLevels,
		Fields: c.Fields, Credits: c.Credits, CreatedAt: c.CreatedAt, SentAt: c.SentAt, ActivatedAt: c.ActivatedAt, RevokedAt: c.RevokedAt,
	}
	if v.AccessLevels == nil {
		v.AccessLevels = []string{}
	}
	if v.Fields == nil {
		v.Fields = map[string]string{}
	}
	if c.Device != nil {
		v.Device = &deviceView{PublicKey: base64.StdEncoding.EncodeToString(c.Device.PublicKey), BoundAt: c.Device.BoundAt}
	}
	return v
}

// cardKey is a card's list cursor: the state's own (State.SiteCards pages
// from it).
func cardKey(v cardView) string {
	return state.CardCursor(&state.Card{LastName: v.LastName, FirstName: v.FirstName, ID: v.ID})
}

// cardFromWrite decodes the card a write returned.
func cardFromWrite(val json.RawMessage) cardView {
	var c state.Card
	json.Unmarshal(val, &c)
	return viewCard(c)
}

type createCardRequest struct {
	CardholderID string            `json:"cardholder_id"`
	FirstName    string            `json:"first_name"`
	LastName     string            `json:"last_name"`
	Email        string            `json:"email"`
	Phone        string            `json:"phone"`
	Kind         string            `json:"kind"`
	ReaderConfig string            `json:"reader_config"`
	PrivateID    string            `json:"private_id"`
	ValidFrom    *time.Time        `json:"valid_from"`
	ValidUntil   *time.Time        `json:"valid_until"`
	MaxUses      int64             `json:"max_uses"`
	AccessLevels []string          `json:"access_levels"`
	Fields       map[string]string `json:"fields"`
}

// createCardBody turns a request (or an import row) into the command.
func createCardBody(siteID, accountID string, req createCardRequest) *command.CreateCard {
	b := &command.CreateCard{
		ID: newID(), SiteID: siteID, AccountID: accountID, Kind: req.Kind, ReaderConfig: trimmed(req.ReaderConfig),
		PrivateID: trimmed(req.PrivateID), CardholderID: req.CardholderID, ValidFrom: req.ValidFrom, ValidUntil: req.ValidUntil,
		MaxUses: req.MaxUses, AccessLevels: req.AccessLevels, Fields: req.Fields,
	}
	if b.Kind == "" {
		b.Kind = state.KindPrivateID
		if b.ReaderConfig == "" && b.PrivateID == "" {
			b.Kind = state.KindDeviceID
		}
	}
	if req.CardholderID == "" {
		b.NewCardholder = &command.CreateCardholder{ID: newID(), AccountID: accountID, FirstName: req.FirstName,
			LastName: req.LastName, Email: req.Email, Phone: req.Phone}
	}
	return b
}

func (a *API) createCard(w http.ResponseWriter, r *http.Request, p *Principal) {
	site, ok := a.findSite(w, p, r.PathValue("id"))
	if !ok {
		return
	}
	var req createCardRequest
	if !decode(w, r, &req) {
		return
	}
	val, ok := a.write(w, r, p, createCardBody(site.ID, p.Account.ID, req))
	if ok {
		writeJSON(w, http.StatusCreated, cardFromWrite(val))
	}
}

func (a *API) listCards(w http.ResponseWriter, r *http.Request, p *Principal) {
	site, ok := a.findSite(w, p, r.PathValue("id"))
	if !ok {
		return
	}
	q, ok := parseList(w, r)
	if !ok || !a.strong(w, r) {
		return
	}
	var items []cardView
	a.svc.Read(func(s *state.State) {
		// One more than a page, so page() knows whether there is a next one.
		for c := range s.SiteCards(site.ID, false, q.Status, q.After) {
			if cardMatches(c, q) {
				items = append(items, viewCard(c))
				if len(items) > q.Limit {
					break
				}
			}
		}
	})
	writeJSON(w, http.StatusOK, page(items, cardKey, q))
}

// cardMatches reports whether a card's text columns match the list's ?q=.
func cardMatches(c state.Card, q listQuery) bool {
	return matches(q.Q, c.FirstName, c.LastName, c.Email, c.Phone, c.ReaderConfig, c.PrivateID, c.Status, c.ID)
}

// findCard returns a card of the principal's account and a site it may see, or answers 404.
func (a *API) findCard(w http.ResponseWriter, p *Principal, id string) (state.Card, bool) {
	return a.findCardOf(w, p, id, false)
}

// findCardOf finds a user card, or (config) a configuration card.
func (a *API) findCardOf(w http.ResponseWriter, p *Principal, id string, config bool) (state.Card, bool) {
	var c state.Card
	ok := a.readFresh(func(s *state.State) bool {
		var found bool
		c, found = s.Cards.Get(id)
		return found && c.AccountID == p.Account.ID && p.CanSite(c.SiteID) && (c.Kind == state.KindConfig) == config
	})
	if !ok {
		writeError(w, http.StatusNotFound, "card_not_found", "", "there is no card "+id+" in your account")
		return c, false
	}
	return c, true
}

func (a *API) getCard(config bool) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, p *Principal) {
		if !a.strong(w, r) {
			return
		}
		if c, ok := a.findCardOf(w, p, r.PathValue("id"), config); ok {
			writeJSON(w, http.StatusOK, viewCard(c))
		}
	}
}

func (a *API) updateCard(w http.ResponseWriter, r *http.Request, p *Principal) {
	c, ok := a.findCard(w, p, r.PathValue("id"))
	if !ok {
		return
	}
	var req struct {
		FirstName    *string            `json:"first_name"`
		LastName     *string            `json:"last_name"`
		Email        *string            `json:"email"`
		Phone        *string            `json:"phone"`
		Kind         *string            `json:"kind"`
		ReaderConfig *string            `json:"reader_config"`
		PrivateID    *string            `json:"private_id"`
		ValidFrom    *time.Time         `json:"valid_from"`
		ValidUntil   *time.Time         `json:"valid_until"`
		MaxUses      *int64             `json:"max_uses"`
		AccessLevels *[]string          `json:"access_levels"`
		Fields       *map[string]string `json:"fields"`
	}
	if !decode(w, r, &req) {
		return
	}
	val, ok := a.write(w, r, p, &command.UpdateCard{
		ID: c.ID, AccountID: p.Account.ID, FirstName: req.FirstName, LastName: req.LastName, Email: req.Email, Phone: req.Phone,
		Kind: req.Kind, ReaderConfig: req.ReaderConfig, PrivateID: req.PrivateID, ValidFrom: req.ValidFrom, ValidUntil: req.ValidUntil,
		MaxUses: req.MaxUses, AccessLevels: req.AccessLevels, Fields: req.Fields,
	})
	if ok {
		writeJSON(w, http.StatusOK, cardFromWrite(val))
	}
}

// cardAction answers the simple card commands: revoke, lost, delete.
func (a *API) cardAction(config bool, make func(id, account string) command.Body, status int) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, p *Principal) {
		c, ok := a.findCardOf(w, p, r.PathValue("id"), config)
		if !ok {
			return
		}
		val, ok := a.write(w, r, p, make(c.ID, p.Account.ID))
		switch {
		case !ok:
		case status == http.StatusNoContent:
			w.WriteHeader(status)
		default:
			writeJSON(w, status, cardFromWrite(val))
		}
	}
}

// sendCard makes a fresh single-use link, keeps only its hash on the card,
// and queues the activation message that carries it.
func (a *API) sendCard(config bool) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, p *Principal) { a.send(w, r, p, config) }
}

func (a *API) send(w http.ResponseWriter, r *http.Request, p *Principal, config bool) {
	c, ok := a.findCardOf(w, p, r.PathValue("id"), config)
	if !ok {
		return
	}
	var site state.Site
	a.svc.Read(func(s *state.State) { site = s.Sites.At(c.SiteID) })
	token := newToken()
	expires := a.now().UTC().Add(site.ActivationTTL)
	kind := state.TemplateCardActivation
	if c.Kind == state.KindConfig {
		kind = state.TemplateConfigActivation
	}
	msg := a.message(p.Account.ID, kind, c.Email, map[string]string{
		"first_name": c.FirstName, "last_name": c.LastName, "site": site.Name, "configuration": c.ReaderConfig,
		"account": p.Account.Name, "expires": when(expires), "link": strings.TrimRight(a.baseURL, "/") + "/activate/" + token + a.pinFragment(),
	})
	val, ok := a.write(w, r, p, &command.SendCard{ID: c.ID, AccountID: p.Account.ID, LinkHash: HashToken(token), LinkExpires: expires, Message: msg})
	if ok {
		writeJSON(w, http.StatusOK, cardFromWrite(val))
	}
}

// activationView is what the wallet keeps after activating.
type activationView struct {
	CardID       string `json:"card_id"`
	SiteID       string `json:"site_id"`
	Site         string `json:"site"`
	Kind         string `json:"kind"`
	ReaderConfig string `json:"reader_config"`
	PrivateID    string `json:"private_id"`
	FirstName    string `json:"first_name"`
	LastName     string `json:"last_name"`
	Status       string `json:"status"`
	// Cluster names the cluster, so the wallet can tell its cards apart.
	Cluster string `json:"cluster"`
	// VerdictKey is the cluster's public verdict key (base64 Ed25519): the
	// wallet carries out a reader's delete instruction only when signed.
	VerdictKey string `json:"verdict_key"`
}

// activate redeems a link: POST /activate/{token} {"public_key": base64 PKIX DER of a P-256 key}.
// No login: the link is the credential, single use and short-lived.
func (a *API) activate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		PublicKey string `json:"public_key"`
	}
	if !decode(w, r, &req) {
		return
	}
	der, err := base64.StdEncoding.DecodeString(req.PublicKey)
	if err != nil || len(der) == 0 {
		writeError(w, http.StatusBadRequest, "invalid_value", "public_key", "public_key must be the base64 of the phone's P-256 public key (PKIX DER)")
		return
	}
	body := &command.ActivateCard{LinkHash: HashToken(r.PathValue("token")), DeviceKey: der}
	bindKey(r, body.LinkHash)
	system := &Principal{Operator: state.Operator{ID: "activation"}}
	if !a.precheck(w, r, system, body) {
		return
	}
	val, ok := a.write(w, r, system, body)
	if !ok {
		return
	}
	var c state.Card
	json.Unmarshal(val, &c)
	v := activationView{CardID: c.ID, SiteID: c.SiteID, Kind: c.Kind, ReaderConfig: c.ReaderConfig, PrivateID: c.PrivateID,
		FirstName: c.FirstName, LastName: c.LastName, Status: c.Status}
	a.svc.Read(func(s *state.State) {
		v.Site, v.Cluster, v.VerdictKey = s.Sites.At(c.SiteID).Name, s.ClusterID(), verdictPublic(s)
	})
	writeJSON(w, http.StatusOK, v)
}

// offlineFirst answers revoke and lost (SPEC 3.1): with a quorum like any
// write; on a node without one, 202 {"queued": true}: the node's readers
// deny the card at once and the command commits when the quorum is back.
// The status rule is checked on the local replica first, so a queued
// command is one the cluster will accept unless the card changed meanwhile.
func (a *API) offlineFirst(config bool, make func(id, account string) command.Body) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, p *Principal) {
		c, ok := a.findCardOf(w, p, r.PathValue("id"), config)
		if !ok {
			return
		}
		body := make(c.ID, p.Account.ID)
		if a.svc.HasQuorum() {
			val, ok := a.writeOr(w, r, p, body, func(err error) bool { return errors.Is(err, ErrNoQuorum) })
			if ok {
				writeJSON(w, http.StatusOK, cardFromWrite(val))
				return
			}
			if val == nil {
				return // answered
			}
		}
		// No quorum: check the state's rule on the local replica, then queue.
		var refusal *state.Rejection
		switch body.(type) {
		case *command.RevokeCard:
			refusal = state.RevokeRefusal(c)
		case *command.MarkLost:
			refusal = state.LostRefusal(c)
		}
		if refusal != nil {
			writeRejection(w, refusal)
			return
		}
		cmd := command.Command{Header: command.Header{RequestID: newID(), Actor: p.Operator.ID, At: a.now().UTC(), Node: a.nodeID}, Body: body}
		if key := r.Header.Get("Idempotency-Key"); key != "" && len(key) <= 200 {
			cmd.RequestID, cmd.Idempotent = idempotentRequestID(p.Operator.ID, key), true
		}
		if err := a.svc.QueueOffline(cmd); err != nil {
			a.writeServiceError(w, err)
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]any{"queued": true, "id": c.ID})
	}
}

// verdictPublic is the cluster's public verdict key, base64.
func verdictPublic(s *state.State) string {
	k := s.VerdictKey()
	if k == nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))
}

// pinFragment is the part of an activation link that tells the wallet
// which CA to trust: in the fragment, which browsers never send.
func (a *API) pinFragment() string {
	if a.CAPin == nil {
		return ""
	}
	if fp := a.CAPin(); fp != "" {
		return "#ca=" + fp
	}
	return ""
}
