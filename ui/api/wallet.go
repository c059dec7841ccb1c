package api

import (
	"context"
	"encoding/base64"
	"net/http"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// The phone's side over the site network (SPEC 7, `lintel wallet checkin`).
// No operator login: a check-in only reads statuses of card ids the phone
// holds, and a deletion receipt is authenticated by the card's bound key.

type checkinCard struct {
	CardID string `json:"card_id"`
	Status string `json:"status"`
	// Delete tells the phone to delete the card and send a deletion receipt.
	Delete bool `json:"delete"`
}

func (a *API) walletCheckin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		CardIDs []string `json:"card_ids"`
	}
	if !decode(w, r, &req) {
		return
	}
	if len(req.CardIDs) > 100 {
		writeError(w, http.StatusBadRequest, "too_many", "card_ids", "a phone checks in at most 100 cards at a time")
		return
	}
	// A card this replica does not know may be one activated a moment ago
	// on another node: ask the leader before telling a phone to drop it.
	var unknown bool
	a.svc.Read(func(s *state.State) {
		for _, id := range req.CardIDs {
			if _, ok := s.Cards.Get(id); !ok {
				unknown = true
			}
		}
	})
	if unknown {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		err := a.svc.Strong(ctx)
		cancel()
		if err != nil {
			a.writeServiceError(w, err)
			return
		}
	}
	out := make([]checkinCard, 0, len(req.CardIDs))
	var cluster, vkey string
	a.svc.Read(func(s *state.State) {
		cluster, vkey = s.ClusterID(), verdictPublic(s)
		for _, id := range req.CardIDs {
			c, ok := s.Cards.Get(id)
			switch {
			case !ok:
				out = append(out, checkinCard{CardID: id, Status: "deleted", Delete: true})
			default:
				del := c.Status == state.CardPendingRevoke || c.Status == state.CardRevoked || c.Status == state.CardLost
				out = append(out, checkinCard{CardID: id, Status: c.Status, Delete: del})
			}
		}
	})
	writeJSON(w, http.StatusOK, map[string]any{"cards": out, "cluster": cluster, "verdict_key": vkey})
}

func (a *API) walletReceipt(w http.ResponseWriter, r *http.Request) {
	var req struct {
		CardID    string `json:"card_id"`
		Signature string `json:"signature"`
	}
	if !decode(w, r, &req) {
		return
	}
	sig, err := base64.StdEncoding.DecodeString(req.Signature)
	if err != nil || len(sig) == 0 || len(sig) > 128 {
		writeError(w, http.StatusBadRequest, "invalid_value", "signature", "signature must be the base64 ECDSA P-256 (ASN.1) signature of the deletion receipt")
		return
	}
	body := &command.ConfirmRevoke{CardID: req.CardID, Signature: sig}
	bindKey(r, "card "+req.CardID)
	phone := &Principal{Operator: state.Operator{ID: "phone"}}
	if !a.precheck(w, r, phone, body) {
		return
	}
	val, ok := a.write(w, r, phone, body)
	if !ok {
		return
	}
	c := cardFromWrite(val)
	writeJSON(w, http.StatusOK, checkinCard{CardID: c.ID, Status: c.Status, Delete: true})
}
