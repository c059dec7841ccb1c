package wallet

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"lintel/consensus/command"
)

func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func assertMode(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %04o, want 0600", path, st.Mode().Perm())
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// fakeNode answers the phone's endpoints the way ui/api does, with knobs
// for the failures a real node cannot be made to show on demand.
type fakeNode struct {
	mu          sync.Mutex
	activate    func(w http.ResponseWriter, r *http.Request) bool // true: answered
	keys        map[string][]byte                                 // card id -> bound PKIX key
	statuses    map[string]string
	idemKeys    []string
	receiptFail int // receipts answered 503 before one is taken
	receipts    int
	limited     int // requests answered 429 (Retry-After: 1) before one is taken
	// receiptLimited answers every receipt 429.
	receiptLimited bool
}

func (f *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		writeError(w, 400, "bad_request", "want a JSON POST")
		return
	}
	if f.limited > 0 {
		f.limited--
		w.Header().Set("Retry-After", "1")
		writeError(w, 429, "too_many_requests", "too many requests from this address")
		return
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/activate/"):
		f.idemKeys = append(f.idemKeys, r.Header.Get("Idempotency-Key"))
		if f.activate != nil && f.activate(w, r) {
			return
		}
		var req struct {
			PublicKey string `json:"public_key"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		der, err := base64.StdEncoding.DecodeString(req.PublicKey)
		if _, perr := x509.ParsePKIXPublicKey(der); err != nil || perr != nil {
			writeError(w, 400, "invalid_value", "bad key")
			return
		}
		id := strings.TrimPrefix(r.URL.Path, "/activate/")
		f.keys[id], f.statuses[id] = der, "activated"
		json.NewEncoder(w).Encode(map[string]string{"card_id": id, "site_id": "s1", "site": "HQ", "kind": "private_id",
			"reader_config": "London", "private_id": "1", "first_name": "A", "last_name": "B", "status": "activated"})
	case r.URL.Path == "/wallet/v1/checkin":
		var req struct {
			CardIDs []string `json:"card_ids"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		type card struct {
			CardID string `json:"card_id"`
			Status string `json:"status"`
			Delete bool   `json:"delete"`
		}
		out := []card{}
		for _, id := range req.CardIDs {
			st, ok := f.statuses[id]
			if !ok {
				st = "deleted"
			}
			out = append(out, card{id, st, st != "activated"})
		}
		json.NewEncoder(w).Encode(map[string]any{"cards": out})
	case r.URL.Path == "/wallet/v1/receipts":
		var req struct {
			CardID    string `json:"card_id"`
			Signature string `json:"signature"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		if f.receiptLimited {
			w.Header().Set("Retry-After", "1")
			writeError(w, 429, "too_many_requests", "too many requests from this address")
			return
		}
		if f.receiptFail > 0 {
			f.receiptFail--
			writeError(w, 503, "no_quorum", "no leader")
			return
		}
		sig, _ := base64.StdEncoding.DecodeString(req.Signature)
		k, err := x509.ParsePKIXPublicKey(f.keys[req.CardID])
		sum := sha256.Sum256(command.DeletionReceiptMessage(req.CardID))
		if err != nil || !ecdsa.VerifyASN1(k.(*ecdsa.PublicKey), sum[:], sig) {
			writeError(w, 403, "bad_signature", "the deletion receipt is not signed by the phone this card is bound to")
			return
		}
		f.receipts++
		f.statuses[req.CardID] = "revoked"
		json.NewEncoder(w).Encode(map[string]any{"card_id": req.CardID, "status": "revoked", "delete": true})
	default:
		writeError(w, 404, "not_found", "no such path")
	}
}

func newFake(t *testing.T) (*fakeNode, *httptest.Server) {
	f := &fakeNode{keys: map[string][]byte{}, statuses: map[string]string{}}
	return f, newServer(t, f)
}

func TestOpenSaveAndPermissions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wallet.json")
	w, err := Open(path)
	if err != nil || len(w.Cards()) != 0 {
		t.Fatalf("a missing file is an empty wallet: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Open created the file")
	}
	if err := w.Save(); err != nil {
		t.Fatal(err)
	}
	assertMode(t, path)
	if w, err = Open(path); err != nil || len(w.Cards()) != 0 {
		t.Fatalf("reopen: %v", err)
	}

	// A wallet others can read is refused, with the fix in the message.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") || !strings.Contains(err.Error(), "0644") {
		t.Fatalf("0644 wallet: %v", err)
	}
	os.Chmod(path, 0o620)
	if _, err := Open(path); err == nil {
		t.Fatal("a group-writable wallet was opened")
	}

	// Saving replaces the file with a fresh 0600 one and leaves no temp file.
	os.Chmod(path, 0o600)
	w, _ = Open(path)
	os.Chmod(path, 0o400)
	if err := w.Save(); err != nil {
		t.Fatal(err)
	}
	assertMode(t, path)
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("left in the directory: %v", ents)
	}

	for name, content := range map[string]string{
		"garbage":     "not json",
		"version":     `{"version": 9, "cards": []}`,
		"bad key":     `{"version": 1, "cards": [{"card_id": "c1", "private_key": "AAAA"}]}`,
		"no key":      `{"version": 1, "cards": [{"card_id": "c1"}]}`,
		"duplicate":   `{"version": 1, "cards": [{"card_id": "c1", "deleted": true}, {"card_id": "c1", "deleted": true}]}`,
		"bad pending": `{"version": 1, "cards": [], "pending": [{"url": "x", "private_key": "!"}]}`,
	} {
		p := filepath.Join(dir, "w-"+strings.ReplaceAll(name, " ", "-"))
		os.WriteFile(p, []byte(content), 0o600)
		if _, err := Open(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Open(dir); err == nil {
		t.Error("a directory was opened as a wallet")
	}
	if err := (&Wallet{path: filepath.Join(dir, "no", "such", "dir.json")}).Save(); err == nil {
		t.Error("save into a missing directory succeeded")
	}
}

func TestParseURLs(t *testing.T) {
	for in, want := range map[string]string{
		"http://10.0.0.1:8080/activate/abc_DEF-1":      "http://10.0.0.1:8080",
		"https://lintel.example/hq/activate/tok":       "https://lintel.example/hq",
		" http://h:1/activate/tok\n":                   "http://h:1",
		"http://h:1/activate/":                         "",
		"http://h:1/activate/a/b":                      "",
		"http://h:1/other/tok":                         "",
		"ftp://h:1/activate/tok":                       "",
		"/activate/tok":                                "",
		"http:///activate/tok":                         "",
		"not a url at all":                             "",
		"http://[::1]:8080/activate/tok?utm_source=ml": "http://[::1]:8080",
	} {
		got, err := ParseActivationURL(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("ParseActivationURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"http://h:1":      "http://h:1",
		"http://h:1/":     "http://h:1",
		"https://h/base/": "https://h/base",
		"h:1":             "",
		"http://h:1/?x=1": "",
		"":                "",
	} {
		got, err := ParseNodeURL(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("ParseNodeURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestActivateRefusedAndUnknownOutcome(t *testing.T) {
	f, srv := newFake(t)
	path := filepath.Join(t.TempDir(), "wallet.json")
	w, _ := Open(path)

	f.activate = func(w http.ResponseWriter, r *http.Request) bool {
		writeError(w, 409, "link_expired", "this activation link has expired; ask for a new one")
		return true
	}
	_, err := w.Activate(t.Context(), srv.URL+"/activate/c1")
	var se *ServerError
	if !errors.As(err, &se) || se.Code != "link_expired" || err.Error() != "this activation link has expired; ask for a new one (link_expired)" {
		t.Fatalf("refusal: %v", err)
	}
	if w, _ := Open(path); len(w.pending) != 0 || len(w.cards) != 0 {
		t.Fatal("a refused activation left state behind")
	}

	// A non-JSON error page is still a refusal with the HTTP status.
	f.activate = func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "<html>nope</html>", 404)
		return true
	}
	if _, err := w.Activate(t.Context(), srv.URL+"/activate/c1"); err == nil || err.Error() != "the node answered 404 Not Found" {
		t.Fatalf("html refusal: %v", err)
	}

	// 503: the outcome is unknown; the key stays and the retry reuses it.
	f.activate = func(w http.ResponseWriter, r *http.Request) bool {
		writeError(w, 503, "unknown_outcome", "the leader changed")
		return true
	}
	_, err = w.Activate(t.Context(), srv.URL+"/activate/c1")
	if !errors.Is(err, ErrOutcomeUnknown) || !strings.Contains(err.Error(), "run the same activation again") {
		t.Fatalf("unknown outcome: %v", err)
	}
	w, _ = Open(path)
	if len(w.pending) != 1 || len(w.Cards()) != 0 {
		t.Fatalf("pending: %+v", w.pending)
	}
	assertMode(t, path)
	f.activate = nil
	c, err := w.Activate(t.Context(), srv.URL+"/activate/c1")
	if err != nil {
		t.Fatal(err)
	}
	if string(f.keys["c1"]) != string(c.PublicKeyDER()) {
		t.Fatal("the retry did not reuse the pending key")
	}
	if n := len(f.idemKeys); n != 4 || f.idemKeys[2] != f.idemKeys[3] || f.idemKeys[1] == f.idemKeys[2] || !strings.HasPrefix(f.idemKeys[3], "wallet-") {
		t.Fatalf("idempotency keys: %q", f.idemKeys)
	}
	if w, _ := Open(path); len(w.pending) != 0 || len(w.Cards()) != 1 || w.Cards()[0].NodeURL != srv.URL {
		t.Fatalf("after the retry: %+v %+v", w.pending, w.Cards())
	}

	// A bad link is refused before anything is sent or stored.
	if _, err := w.Activate(t.Context(), srv.URL+"/nothing"); err == nil || !strings.Contains(err.Error(), "not an activation link") {
		t.Fatalf("bad link: %v", err)
	}
}

func TestUnreachableNodeHidesToken(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	w, _ := Open(filepath.Join(t.TempDir(), "wallet.json"))
	_, err := w.Activate(t.Context(), addr+"/activate/SECRET-TOKEN")
	var ne *NetError
	if !errors.As(err, &ne) || !strings.Contains(err.Error(), "cannot reach the node at "+addr) || strings.Contains(err.Error(), "SECRET") ||
		errors.Is(err, ErrOutcomeUnknown) || len(w.pending) != 0 {
		t.Fatalf("unreachable: %v (%d pending)", err, len(w.pending))
	}
	// A key kept from a try whose outcome is unknown stays.
	k, _ := newKey()
	pk, _ := marshalKey(k)
	w.pending = []*pending{{URL: addr + "/activate/T2", PrivateKey: pk, IdempotencyKey: "wallet-x", key: k}}
	if _, err := w.Activate(t.Context(), addr+"/activate/T2"); !errors.Is(err, ErrOutcomeUnknown) || len(w.pending) != 1 {
		t.Fatalf("unreachable on a retry: %v (%d pending)", err, len(w.pending))
	}
	w.cards = []*Card{{CardID: "c1", Status: "activated", key: k}}
	if _, err := w.Checkin(t.Context(), addr); !errors.As(err, &ne) || len(w.Cards()) != 1 {
		t.Fatalf("check-in, unreachable: %v", err)
	}
}

func TestCheckinReceiptRetried(t *testing.T) {
	f, srv := newFake(t)
	path := filepath.Join(t.TempDir(), "wallet.json")
	w, _ := Open(path)
	for _, id := range []string{"c1", "c2"} {
		if _, err := w.Activate(t.Context(), srv.URL+"/activate/"+id); err != nil {
			t.Fatal(err)
		}
	}
	f.statuses["c1"] = "pending_revoke"
	f.receiptFail = 1
	res, err := w.Checkin(t.Context(), srv.URL)
	if err == nil || len(res) != 2 || res[0].Receipt != ReceiptPending || res[0].Action != ActionDeleted ||
		!strings.Contains(res[0].Error, "next check-in") || res[1] != (CheckinResult{CardID: "c2", Status: "activated", Action: ActionKept}) {
		t.Fatalf("first check-in: %+v %v", res, err)
	}
	// The key is gone from the file already; the receipt waits there.
	w, _ = Open(path)
	if _, ok := w.Card("c1"); ok || len(w.Cards()) != 1 || len(w.cards) != 2 || w.cards[0].key != nil || w.cards[0].Receipt() == nil {
		t.Fatalf("after a failed receipt: %+v", w.cards)
	}
	if _, err := w.cards[0].Sign([]byte("x")); err == nil {
		t.Fatal("a deleted card still signs")
	}
	data, _ := os.ReadFile(path)
	var doc file
	json.Unmarshal(data, &doc)
	if doc.Cards[0].PrivateKey != "" || !doc.Cards[0].Deleted || doc.Cards[0].DeletedAt == nil {
		t.Fatalf("tombstone on disk: %+v", doc.Cards[0])
	}

	res, err = w.Checkin(t.Context(), srv.URL)
	if err != nil || len(res) != 2 || res[0] != (CheckinResult{CardID: "c1", Status: "revoked", Action: ActionDeleted, Receipt: ReceiptConfirmed}) {
		t.Fatalf("second check-in: %+v %v", res, err)
	}
	if f.receipts != 1 || len(w.cards) != 1 {
		t.Fatalf("receipts %d, cards %+v", f.receipts, w.cards)
	}

	// A receipt the node refuses is reported once and dropped.
	f.statuses["c2"] = "revoked"
	f.keys["c2"] = f.keys["c1"] // bound to another phone now
	res, err = w.Checkin(t.Context(), srv.URL)
	if err == nil || len(res) != 1 || res[0].Receipt != ReceiptRefused || !strings.Contains(res[0].Error, "bad_signature") || len(w.cards) != 0 {
		t.Fatalf("refused receipt: %+v %v", res, err)
	}
}

func TestCheckinBatches(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			CardIDs []string `json:"card_ids"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		sizes = append(sizes, len(req.CardIDs))
		mu.Unlock()
		var out []map[string]any
		for _, id := range req.CardIDs {
			if id != "c7" { // the node leaves one out
				out = append(out, map[string]any{"card_id": id, "status": "activated", "delete": false})
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"cards": out})
	}))
	w, _ := Open(filepath.Join(t.TempDir(), "wallet.json"))
	for i := range 250 {
		k, _ := newKey()
		w.cards = append(w.cards, &Card{CardID: "c" + string(rune('0'+i%10)) + strings.Repeat("x", i/10), key: k})
	}
	res, err := w.Checkin(t.Context(), srv.URL)
	if len(sizes) != 3 || sizes[0] != 100 || sizes[2] != 50 || len(res) != 250 {
		t.Fatalf("batches %v, %d results", sizes, len(res))
	}
	if err == nil || !strings.Contains(err.Error(), "1 of 250") {
		t.Fatalf("a card left out is an error: %v", err)
	}
}

func TestDeleteSignsReceipt(t *testing.T) {
	w, _ := Open(filepath.Join(t.TempDir(), "wallet.json"))
	k, _ := newKey()
	w.cards = []*Card{{CardID: "c1", key: k}}
	sig, err := w.Delete("c1")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("lintel-deletion-receipt 1\nc1"))
	if !ecdsa.VerifyASN1(&k.PublicKey, sum[:], sig) {
		t.Fatal("the receipt does not verify")
	}
	if again, err := w.Delete("c1"); err != nil || string(again) != string(sig) {
		t.Fatal("deleting twice does not give the same receipt")
	}
	w.ReceiptDelivered("c1")
	if _, err := w.Delete("c1"); err == nil {
		t.Fatal("deleted a card the wallet does not hold")
	}
}

func TestDeleteKeepsCardWhenSaveFails(t *testing.T) {
	dir := t.TempDir()
	w, _ := Open(filepath.Join(dir, "sub", "wallet.json")) // the directory does not exist
	k, _ := newKey()
	w.cards = []*Card{{CardID: "c1", key: k}}
	if _, err := w.Delete("c1"); err == nil {
		t.Fatal("delete saved into a missing directory")
	}
	if c, ok := w.Card("c1"); !ok || c.key == nil || c.Receipt() != nil {
		t.Fatalf("a failed delete changed the card: %+v", c)
	}
}

// A node that says "too many requests from this address" (someone else on
// the phone's network may be the cause) is asked again after Retry-After;
// when it keeps saying so, nothing is given up: the key stays pending and
// the receipt waits for the next check-in.
func TestTooManyRequestsIsNotARefusal(t *testing.T) {
	f, srv := newFake(t)
	w, _ := Open(filepath.Join(t.TempDir(), "wallet.json"))
	f.limited = 2
	if _, err := w.Activate(t.Context(), srv.URL+"/activate/c1"); err != nil {
		t.Fatalf("after two 429s: %v", err)
	}
	f.mu.Lock()
	f.limited = 1000
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	if _, err := w.Activate(ctx, srv.URL+"/activate/c2"); !errors.Is(err, ErrOutcomeUnknown) || len(w.pending) != 1 {
		t.Fatalf("kept at 429: %v (%d pending), want the outcome unknown and the key kept", err, len(w.pending))
	}
	f.mu.Lock()
	f.limited, f.statuses["c1"] = 0, "pending_revoke"
	f.receiptFail = 0
	f.mu.Unlock()
	// The check-in itself passes; the receipt is limited.
	res, err := checkinLimitedReceipt(t, f, w, srv.URL)
	if len(res) == 0 || res[0].Receipt != ReceiptPending {
		t.Fatalf("receipt at 429: %+v %v, want it pending", res, err)
	}
}

// checkinLimitedReceipt checks in with the node answering 429 to every
// receipt for a second and a half.
func checkinLimitedReceipt(t *testing.T, f *fakeNode, w *Wallet, url string) ([]CheckinResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	f.mu.Lock()
	f.receiptLimited = true
	f.mu.Unlock()
	return w.Checkin(ctx, url)
}
