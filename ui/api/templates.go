package api

import (
	"net/http"
	"strings"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// defaultTemplates are the messages' words when an account has not set its own.
var defaultTemplates = map[string]state.Template{
	state.TemplateCardActivation: {
		Subject: "Your virtual access card for {site}",
		Body: "Hello {first_name} {last_name},\n\nYour virtual access card for {site} is ready.\n" +
			"Open this link on your phone, in the wallet app, to activate it. It works once and expires on {expires}.\n\n{link}\n",
	},
	state.TemplateConfigActivation: {
		Subject: "Your configuration card {configuration} for {site}",
		Body: "Hello {first_name} {last_name},\n\nYour virtual configuration card {configuration} for {site} is ready.\n" +
			"Open this link on your phone, in the settings app, to activate it. It works once and expires on {expires}.\n\n{link}\n",
	},
	state.TemplateInvitation: {
		Subject: "Your Lintel access for {account}",
		Body: "Hello {first_name} {last_name},\n\nYou have been given access to {account}.\n" +
			"Set your password here (the link works once and expires on {expires}):\n\n{link}\n",
	},
}

// message words one message from the account's template (or the default).
func (a *API) message(accountID, kind, to string, fill map[string]string) command.Message {
	t, ok := state.Template{}, false
	a.svc.Read(func(s *state.State) { t, ok = s.TemplateOf(accountID, kind) })
	if !ok {
		t = defaultTemplates[kind]
	}
	pairs := make([]string, 0, 2*len(fill))
	for k, v := range fill {
		pairs = append(pairs, "{"+k+"}", v)
	}
	rep := strings.NewReplacer(pairs...)
	// Names come from people: a line break in them must not reach the subject.
	subject := strings.NewReplacer("\r", " ", "\n", " ").Replace(rep.Replace(t.Subject))
	return command.Message{ID: newID(), To: to, Subject: subject, Body: rep.Replace(t.Body)}
}

func when(t time.Time) string { return t.Format("02-01-2006 15:04 MST") }

type templateView struct {
	Kind    string `json:"kind"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
	Custom  bool   `json:"custom"`
}

func (a *API) listTemplates(w http.ResponseWriter, r *http.Request, p *Principal) {
	var items []templateView
	a.svc.Read(func(s *state.State) {
		for _, k := range state.TemplateKinds {
			t, ok := s.TemplateOf(p.Account.ID, k)
			if !ok {
				t = defaultTemplates[k]
			}
			items = append(items, templateView{Kind: k, Subject: t.Subject, Body: t.Body, Custom: ok})
		}
	})
	writeJSON(w, http.StatusOK, listPage[templateView]{Items: items})
}

// putTemplate sets an account's wording; {first_name}, {last_name},
// {site}, {configuration}, {account}, {expires} and {link} are filled in.
func (a *API) putTemplate(w http.ResponseWriter, r *http.Request, p *Principal) {
	var req struct {
		Subject string `json:"subject"`
		Body    string `json:"body"`
	}
	if !decode(w, r, &req) {
		return
	}
	if _, ok := a.write(w, r, p, &command.SetTemplate{AccountID: p.Account.ID, Kind: r.PathValue("kind"), Subject: req.Subject, Body: req.Body}); ok {
		a.listTemplates(w, r, p)
	}
}
