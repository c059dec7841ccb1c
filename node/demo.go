package node

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state"
	"lintel/consensus/state/voucher"
	"lintel/ui/api"
	"lintel/voucherkey"
)

// The demo's people and logins. The integrator (the first operator) is a
// reseller; its customer works in the portal day to day (seed 003).
const (
	DemoCustomerEmail = "customer@lintel.local"
	demoCustomerName  = "Demo Customer"
	demoSite          = "Headquarters"
)

// loadDemo fills a new demo cluster with what a newcomer should see move:
// the integrator's demo credit issuer (its key in the data dir, 0600) and a
// voucher of 1500 credits; an end customer with 500 of them, a site, its
// reader configuration, two readers on this node (door-1, door-2) and
// cardholders. The cards, in every status, are then made through the API by
// the demo's driver (Config.DemoDriver, package demo), with a simulated phone
// that keeps presenting at the doors.
func (n *Node) loadDemo(ctx context.Context) {
	acc := n.initAdmin.AccountID
	key, err := voucherkey.GenerateKey()
	if err == nil {
		err = voucherkey.WriteKeyFiles(filepath.Join(n.cfg.DataDir, "demo-issuer.key"), key, true)
	}
	if err != nil {
		n.log.Warn("demo issuer not made", "err", err)
		return
	}
	if !n.applySystem(ctx, "demo-issuer-"+acc, &command.AddIssuer{KeyID: key.KeyID(), PublicKey: key.Public(), Name: "demo"}) {
		return
	}
	_, text := voucher.Issue(key, acc, "demo-"+acc, 1500, time.Now())
	n.applySystem(ctx, "demo-voucher-"+acc, &command.LoadVoucher{AccountID: acc, Voucher: text})

	cust, invite := api.NewID(), api.NewID()+api.NewID()
	if !n.applySystem(ctx, "demo-customer-"+acc, &command.CreateAccount{ID: cust, ParentID: acc, Name: demoCustomerName, Kind: state.AccountEndCustomer,
		FirstName: "Claire", LastName: "Martin", Email: DemoCustomerEmail, OperatorID: api.NewID(), ProfileID: api.NewID(),
		InviteHash: api.HashToken(invite), InviteExpires: time.Now().Add(time.Hour), Credits: 500, TransferID: api.NewID(), Comment: "Demo: first credits"}) {
		return
	}
	n.applySystem(ctx, "demo-customer-login-"+acc, &command.AcceptInvitation{InviteHash: api.HashToken(invite), PasswordHash: n.initAdmin.PasswordHash})
	site := api.NewID()
	n.applySystem(ctx, "demo-site-"+acc, &command.CreateSite{ID: site, AccountID: cust, Name: demoSite})
	n.applySystem(ctx, "demo-config-"+acc, &command.CreateReaderConfig{ID: api.NewID(), AccountID: cust, SiteID: site,
		Source: "lintel-reader-config 1\n# The demo's reader configuration\nname = " + demoSite + "\nmode.slide = short\n"})
	// One card sent with a link that runs out in two seconds (shorter than
	// any site's activation TTL may be): the leader expires it, so the
	// demo shows Expired too.
	expiring := api.NewID()
	n.applySystem(ctx, "demo-expiring-card-"+acc, &command.CreateCard{ID: expiring, SiteID: site, AccountID: cust, Kind: state.KindPrivateID,
		ReaderConfig: demoSite, PrivateID: "530981", NewCardholder: &command.CreateCardholder{ID: api.NewID(), AccountID: cust,
			FirstName: "Rosa", LastName: "Quinn", Email: "rosa.quinn@example.com"}})
	n.applySystem(ctx, "demo-expiring-send-"+acc, &command.SendCard{ID: expiring, AccountID: cust,
		LinkHash: api.HashToken(api.NewID() + api.NewID()), LinkExpires: time.Now().Add(2 * time.Second)})
	for _, r := range []struct{ id, name string }{{"door-1", "Main entrance"}, {"door-2", "Car park"}} {
		n.applySystem(ctx, "demo-reader-"+r.id+"-"+acc, &command.CreateReader{ID: r.id, AccountID: cust, SiteID: site, NodeID: n.cfg.NodeID,
			Name: r.name, ReaderConfig: demoSite, Transport: "link"})
	}
	if n.cfg.DemoDriver != nil {
		go n.cfg.DemoDriver(n.demoContext(), DemoSetup{
			URL: n.URL(), ReaderLink: n.linkAddr(), DataDir: n.cfg.DataDir, SiteID: site,
			Email: DemoCustomerEmail, Password: n.demoPass, CAFile: n.demoCAFile(), Log: n.log,
		})
	}
}

// DemoSetup is what the demo's driver (package demo) needs to act as the
// demo customer's operator and as a phone.
type DemoSetup struct {
	URL        string // this node's console and API
	ReaderLink string // this node's reader link, where the phone presents
	DataDir    string // where the phones' wallet files go
	SiteID     string
	Email      string
	Password   string
	CAFile     string // the cluster CA, when URL is HTTPS
	Log        *slog.Logger
}

// demoContext ends when the node stops.
func (n *Node) demoContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-n.stop:
		case <-n.failed:
		}
		cancel()
	}()
	return ctx
}

func (n *Node) linkAddr() string {
	if n.link == nil {
		return ""
	}
	return n.link.Addr()
}

func (n *Node) demoCAFile() string {
	if n.httpTLS == nil {
		return ""
	}
	return filepath.Join(n.cfg.DataDir, "tls", "ca.crt")
}
