// Command lintel runs a building node, and the tools around it.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"lintel/demo"
	"lintel/node"
	"lintel/pki"
	"lintel/reader"
	"lintel/replication"
)

// Set at build time by the Makefile.
var (
	version = "dev"
	commit  = "unknown"
)

const usage = `lintel: mobile access credentials for sites without internet

Usage:
  lintel serve [flags]      run a building node (lintel serve -h for the flags)
  lintel wallet ...         the phone's software wallet (lintel wallet -h)
  lintel voucher ...        credit-issuer keys and signed credit vouchers (lintel voucher -h)
  lintel version            version, commit, Go version
  lintel help               this text
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "lintel %s (commit %s, %s)\n", version, commit, runtime.Version())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "voucher":
		return voucherCmd(args[1:], stdout, stderr)
	case "wallet":
		return walletCmd(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "lintel: unknown command %q; run 'lintel help'\n", args[0])
	return 2
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func serveFlags(cfg *node.Config, join *string, doors *[]string, fs *flag.FlagSet) {
	host, _ := os.Hostname()
	fs.StringVar(&cfg.DataDir, "data-dir", env("LINTEL_DATA_DIR", "./lintel-data"), "all durable state of this node ($LINTEL_DATA_DIR)")
	fs.StringVar(&cfg.NodeID, "node-id", env("LINTEL_NODE_ID", host), "stable id of this node, kept in the data dir ($LINTEL_NODE_ID)")
	fs.StringVar(&cfg.Building, "building", env("LINTEL_BUILDING", ""), "human name shown in the console; the node id when empty ($LINTEL_BUILDING)")
	fs.StringVar(&cfg.HTTP, "http", env("LINTEL_HTTP", "127.0.0.1:8080"), "console and API listen address ($LINTEL_HTTP)")
	fs.StringVar(&cfg.Raft, "raft", env("LINTEL_RAFT", "127.0.0.1:7000"), "Raft transport listen address ($LINTEL_RAFT)")
	fs.StringVar(&cfg.Gossip, "gossip", env("LINTEL_GOSSIP", "127.0.0.1:7946"), "memberlist listen address, TCP and UDP ($LINTEL_GOSSIP)")
	fs.StringVar(&cfg.Readers, "readers", env("LINTEL_READERS", "127.0.0.1:7100"), "reader link listen address ($LINTEL_READERS; phones and network readers connect here)")
	fs.StringVar(&cfg.AdvertiseHTTP, "advertise-http", "", "HTTP address other nodes use (default: the listen address)")
	fs.StringVar(&cfg.AdvertiseRaft, "advertise-raft", "", "Raft address other nodes use (default: the listen address)")
	fs.StringVar(&cfg.AdvertiseGossip, "advertise-gossip", "", "gossip address other nodes use (default: the listen address)")
	fs.StringVar(join, "join", env("LINTEL_JOIN", ""), "comma-separated gossip addresses of existing nodes ($LINTEL_JOIN)")
	fs.StringVar(&cfg.AdminEmail, "admin-email", env("LINTEL_ADMIN_EMAIL", "admin@lintel.local"), "first operator of a new cluster ($LINTEL_ADMIN_EMAIL)")
	fs.StringVar(&cfg.AdminPassword, "admin-password", env("LINTEL_ADMIN_PASSWORD", ""), "its password; generated and printed once when empty ($LINTEL_ADMIN_PASSWORD)")
	fs.StringVar(&cfg.JoinToken, "join-token", env("LINTEL_JOIN_TOKEN", ""), "the cluster's join token, needed the first time a node joins ($LINTEL_JOIN_TOKEN)")
	fs.StringVar(&cfg.GossipKey, "gossip-key", env("LINTEL_GOSSIP_KEY", ""), "base64 key of 16, 24 or 32 bytes that encrypts gossip, taken at bootstrap; made when empty ($LINTEL_GOSSIP_KEY)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", env("LINTEL_TLS_CERT", ""), "the site's own certificate (PEM) for the console and API; otherwise the cluster CA issues one ($LINTEL_TLS_CERT)")
	fs.StringVar(&cfg.TLSKey, "tls-key", env("LINTEL_TLS_KEY", ""), "the key (PEM) of --tls-cert ($LINTEL_TLS_KEY)")
	fs.Var((*listFlag)(&cfg.VoucherIssuers), "voucher-issuer", "credit-issuer public key file (FILE.pub of lintel voucher keygen) to trust, repeatable; taken at bootstrap")
	fs.StringVar(&cfg.SMTP, "smtp", env("LINTEL_SMTP", ""), "HOST:PORT of the site's mail relay for activation messages ($LINTEL_SMTP)")
	fs.BoolVar(&cfg.Demo, "demo", false, "on a new cluster, load demo data")
	cfg.DemoDriver = demo.Drive
	fs.Var((*listFlag)(doors), "door", "wire a reader's door, repeatable: READER_ID=relay:PATH[,amber:PATH][,green:PATH][,red:PATH] (GPIO value files)")
	fs.StringVar(&cfg.LogLevel, "log-level", env("LINTEL_LOG_LEVEL", "info"), "debug, info, warn or error ($LINTEL_LOG_LEVEL)")
}

func serve(args []string, stdout, stderr io.Writer) int {
	var cfg node.Config
	var join string
	var doors []string
	fs := flag.NewFlagSet("lintel serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	serveFlags(&cfg, &join, &doors, fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fmt.Fprintln(stdout, "Usage: lintel serve [flags]")
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(stderr, "lintel serve: %v (see lintel serve -h)\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "lintel serve: unexpected argument %q (see lintel serve -h)\n", fs.Arg(0))
		return 2
	}
	if err := checkDoors(&cfg, doors); err != nil {
		fmt.Fprintf(stderr, "lintel serve: %v\n", err)
		return 2
	}
	if err := checkServe(&cfg, join); err != nil {
		fmt.Fprintf(stderr, "lintel serve: %v\n", err)
		return 2
	}
	cfg.LogOutput = stderr
	cfg.Version = version
	privateFiles()

	n, err := node.Start(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "lintel serve: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Lintel node %s serving the console at %s/\n", cfg.NodeID, n.URL())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case <-n.Failed():
		n.Stop()
		fmt.Fprintf(stderr, "lintel serve: %v\n", n.FailReason())
		return 1
	}
	stop()
	fmt.Fprintln(stderr, "lintel serve: stopping")
	done := make(chan error, 1)
	go func() { done <- n.Stop() }()
	select {
	case err := <-done:
		if err != nil {
			fmt.Fprintf(stderr, "lintel serve: stopped with error: %v\n", err)
			return 1
		}
	case <-time.After(4500 * time.Millisecond):
		// Acknowledged writes are fsynced already; leaving now loses nothing.
		fmt.Fprintln(stderr, "lintel serve: clean stop took too long; exiting")
		return 1
	}
	return 0
}

// checkDoors parses the --door values.
func checkDoors(cfg *node.Config, doors []string) error {
	for _, d := range doors {
		id, w, err := reader.ParseDoorFlag(d)
		if err != nil {
			return err
		}
		if cfg.Doors == nil {
			cfg.Doors = map[string]reader.RelayWiring{}
		}
		if _, dup := cfg.Doors[id]; dup {
			return fmt.Errorf("--door: reader %s wired twice", id)
		}
		cfg.Doors[id] = w
	}
	return nil
}

// checkServe validates flag values; each error names its flag.
func checkServe(cfg *node.Config, join string) error {
	if cfg.NodeID == "" {
		return errors.New("--node-id is empty and the hostname is unknown; set --node-id")
	}
	if strings.ContainsAny(cfg.NodeID, " /\\\t\n") || len(cfg.NodeID) > 64 {
		return fmt.Errorf("--node-id %q: use up to 64 letters, digits, dots, dashes or underscores", cfg.NodeID)
	}
	if cfg.Building == "" {
		cfg.Building = cfg.NodeID
	}
	for _, a := range []struct{ flag, v string }{
		{"--http", cfg.HTTP}, {"--raft", cfg.Raft}, {"--gossip", cfg.Gossip}, {"--readers", cfg.Readers},
		{"--advertise-http", cfg.AdvertiseHTTP}, {"--advertise-raft", cfg.AdvertiseRaft}, {"--advertise-gossip", cfg.AdvertiseGossip},
		{"--smtp", cfg.SMTP},
	} {
		if a.v == "" && (strings.HasPrefix(a.flag, "--advertise") || a.flag == "--smtp") {
			continue
		}
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			return fmt.Errorf("%s %q is not HOST:PORT", a.flag, a.v)
		}
	}
	for _, j := range strings.Split(join, ",") {
		if j = strings.TrimSpace(j); j == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(j); err != nil {
			return fmt.Errorf("--join %q is not HOST:PORT", j)
		}
		cfg.Join = append(cfg.Join, j)
	}
	if !strings.Contains(cfg.AdminEmail, "@") {
		return fmt.Errorf("--admin-email %q is not an email address", cfg.AdminEmail)
	}
	if cfg.AdminPassword != "" && len(cfg.AdminPassword) < 8 {
		return errors.New("--admin-password must be at least 8 characters")
	}
	if cfg.GossipKey != "" {
		if _, err := replication.ParseGossipKey(cfg.GossipKey); err != nil {
			return fmt.Errorf("--gossip-key: %v", err)
		}
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together: give both, or neither for a certificate of the cluster CA")
	}
	if cfg.TLSCert != "" {
		if _, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %v", err)
		}
	}
	if cfg.JoinToken != "" {
		if _, err := pki.ParseJoinToken(cfg.JoinToken); err != nil {
			return fmt.Errorf("--join-token: %v", err)
		}
	}
	switch cfg.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", cfg.LogLevel)
	}
	for _, f := range cfg.VoucherIssuers {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("--voucher-issuer %s: %v", f, err)
		}
	}
	return nil
}
