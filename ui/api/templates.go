package api

import (
	"fmt"
	"net/http"
	"slices"
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

// placeholders are the names each kind of message fills in.
var placeholders = map[string][]string{
	state.TemplateCardActivation:   {"first_name", "last_name", "site", "configuration", "account", "expires", "link"},
	state.TemplateConfigActivation: {"first_name", "last_name", "site", "configuration", "account", "expires", "link"},
	state.TemplateInvitation:       {"first_name", "last_name", "account", "expires", "link"},
}

// unknownPlaceholder returns the first {name} in text that kind does not
// fill (a typo would reach every person as it was typed), and the list of
// those it does.
func unknownPlaceholder(kind, text string) (bad, known string) {
	names, ok := placeholders[kind]
	if !ok {
		return "", "" // an unknown kind: the state refuses it with the kinds
	}
	var list []string
	for _, n := range names {
		list = append(list, "{"+n+"}")
	}
	for rest := text; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return "", ""
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return "", ""
		}
		name := rest[i+1 : i+j]
		if !slices.Contains(names, name) && !strings.ContainsAny(name, " \n{") {
			return "{" + name + "}", strings.Join(list, ", ")
		}
		rest = rest[i+1:]
	}
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
	kind := r.PathValue("kind")
	for field, text := range map[string]string{"subject": req.Subject, "body": req.Body} {
		if bad, known := unknownPlaceholder(kind, text); bad != "" {
			writeError(w, http.StatusBadRequest, "unknown_placeholder", field,
				fmt.Sprintf("%s is not filled in for this message; the placeholders are %s", bad, known))
			return
		}
	}
	if _, ok := a.write(w, r, p, &command.SetTemplate{AccountID: p.Account.ID, Kind: r.PathValue("kind"), Subject: req.Subject, Body: req.Body}); ok {
		a.listTemplates(w, r, p)
	}
}
