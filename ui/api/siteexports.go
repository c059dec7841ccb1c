package api

import (
	"net/http"
)

// Exports of a site's configurators, configuration cards and reader
// configurations (seed 003, figures 88–91), and of the cardholders.

// configuratorSheet is figure 88 (report, with the creation date) or 89 (export).
func (a *API) configuratorSheet(report bool) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, p *Principal) {
		site, ok := a.findSite(w, p, r.PathValue("id"))
		if !ok || !a.strong(w, r) {
			return
		}
		items := a.siteConfigurators(site.ID, exportQuery(r))
		kind := map[bool]string{true: "Report", false: "Export"}[report]
		sw, err := newSheetWriter("Configurators", 18, 18, 30, 18, 20)
		if err != nil {
			a.exportFailed(w, err)
			return
		}
		defer sw.close()
		sw.block(kind, a.now(), blockField{"Company Name", p.Account.Name}, blockField{"Site Name", site.Name})
		if report {
			sw.columns("First Name", "Last Name", "Email", "Phone Number", "Creation Date")
		} else {
			sw.columns("First Name", "Last Name", "Email", "Phone Number")
		}
		for _, cf := range items {
			if report {
				sw.add(cf.FirstName, cf.LastName, cf.Email, cf.Phone, cf.CreatedAt)
			} else {
				sw.add(cf.FirstName, cf.LastName, cf.Email, cf.Phone)
			}
		}
		a.sendSheet(w, sw, site.Name+" - Configurators "+kind+".xlsx")
	}
}

// configCardSheet is figure 90 (report, with the dates) or 91 (export).
func (a *API) configCardSheet(report bool) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, p *Principal) {
		site, ok := a.findSite(w, p, r.PathValue("id"))
		if !ok || !a.strong(w, r) {
			return
		}
		items := a.siteConfigCards(site.ID, "", exportQuery(r))
		kind := map[bool]string{true: "Report", false: "Export"}[report]
		sw, err := newSheetWriter("Virtual Configuration Cards", 18, 18, 30, 22, 22, 22, 22)
		if err != nil {
			a.exportFailed(w, err)
			return
		}
		defer sw.close()
		sw.block(kind, a.now(), blockField{"Company Name", p.Account.Name}, blockField{"Site Name", site.Name})
		if report {
			sw.columns("First Name", "Last Name", "Blue Mobile ID Configuration", "Configuration Creation Date",
				"Configuration Activation Date", "Configuration Revoked Date", "Status")
		} else {
			sw.columns("First Name", "Last Name", "Blue Mobile ID Configuration", "Status")
		}
		for _, c := range items {
			if report {
				sw.add(c.FirstName, c.LastName, c.ReaderConfig, c.CreatedAt, c.ActivatedAt, c.RevokedAt, CardStatusWord(c.Status))
			} else {
				sw.add(c.FirstName, c.LastName, c.ReaderConfig, CardStatusWord(c.Status))
			}
		}
		a.sendSheet(w, sw, site.Name+" - Virtual Configuration Cards "+kind+".xlsx")
	}
}

// exportReaderConfigs lists a site's reader configurations (figure 52's table).
func (a *API) exportReaderConfigs(w http.ResponseWriter, r *http.Request, p *Principal) {
	site, ok := a.findSite(w, p, r.PathValue("id"))
	if !ok || !a.strong(w, r) {
		return
	}
	items := a.siteReaderConfigs(site.ID, exportQuery(r))
	sw, err := newSheetWriter("Reader Configurations", 24, 30, 30, 20)
	if err != nil {
		a.exportFailed(w, err)
		return
	}
	defer sw.close()
	sw.block("Export", a.now(), blockField{"Company Name", p.Account.Name}, blockField{"Site Name", site.Name})
	sw.columns("Configuration Name", "Blue Mobile ID Configuration", "Description", "Creation Date")
	for _, rc := range items {
		sw.add(rc.Name, rc.Settings.Name, rc.Settings.Description, rc.CreatedAt)
	}
	a.sendSheet(w, sw, site.Name+" - Reader Configurations.xlsx")
}

// exportCardholders lists the account's cardholders.
func (a *API) exportCardholders(w http.ResponseWriter, r *http.Request, p *Principal) {
	if !a.strong(w, r) {
		return
	}
	items := a.accountCardholders(p, exportQuery(r))
	sw, err := newSheetWriter("Cardholders", 18, 18, 30, 18, 10, 20, 20)
	if err != nil {
		a.exportFailed(w, err)
		return
	}
	defer sw.close()
	sw.title("Cardholders")
	sw.columns("First Name", "Last Name", "Email", "Phone Number", "Visitor", "Valid From", "Valid Until")
	for _, h := range items {
		sw.add(h.FirstName, h.LastName, h.Email, h.Phone, map[bool]string{true: "Yes", false: "No"}[h.Visitor], h.ValidFrom, h.ValidUntil)
	}
	a.sendSheet(w, sw, "Cardholders.xlsx")
}
