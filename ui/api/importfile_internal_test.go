package api

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"lintel/consensus/command"
)

// The batch cut must keep every command under command.MaxSize whatever the
// text holds, so the size estimate is an upper bound of the real encoding.
func TestCardJSONSizeIsAnUpperBound(t *testing.T) {
	worst := strings.Repeat("<>&\"\\\u2028é", 15)
	for _, req := range []createCardRequest{
		{FirstName: "A", LastName: "B", Email: "a@b.c"},
		{FirstName: worst, LastName: worst, Email: strings.Repeat("&", 240) + "@x.io", Phone: strings.Repeat("<", maxPhoneLen),
			ReaderConfig: worst, PrivateID: strings.Repeat("9", 20)},
	} {
		c := createCardBody(newID(), newID(), req)
		raw, _ := json.Marshal(c)
		if got := cardJSONSize(c); got < len(raw) {
			t.Fatalf("estimate %d < %d bytes", got, len(raw))
		}
	}
	// A full batch of the largest rows still fits in one command.
	big := createCardBody(newID(), newID(), createCardRequest{FirstName: worst, LastName: worst, Email: "a@b.c", ReaderConfig: worst, PrivateID: "1"})
	cards := make([]command.CreateCard, importBatchRows)
	for i := range cards {
		cards[i] = *big
	}
	for _, b := range cutBatches(cards) {
		raw, err := command.Encode(command.Command{Header: command.Header{RequestID: newID(), Actor: newID(), At: time.Now()},
			Body: &command.ImportCards{Cards: cards[b.start:b.end]}})
		if err != nil || len(raw) > command.MaxSize {
			t.Fatalf("batch %v: %d bytes, %v", b, len(raw), err)
		}
	}
}

func TestCutBatches(t *testing.T) {
	cards := make([]command.CreateCard, 2*importBatchRows+1)
	got := cutBatches(cards)
	want := []importBatch{{0, importBatchRows}, {importBatchRows, 2 * importBatchRows}, {2 * importBatchRows, len(cards)}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("batches %v, want %v", got, want)
	}
	if len(cutBatches(nil)) != 0 {
		t.Fatal("batches of nothing")
	}
}

func TestGuardCell(t *testing.T) {
	for in, want := range map[string]string{
		"=1+1": "'=1+1", "+33 6": "'+33 6", "-2": "'-2", "@SUM(A1)": "'@SUM(A1)", "\tx": "'\tx", "\rx": "'\rx",
		"Paul": "Paul", "": "", "'quoted": "'quoted", "a=b": "a=b",
	} {
		if got := guardCell(in); got != want {
			t.Errorf("guardCell(%q) = %q, want %q", in, got, want)
		}
		if back := unguardCell(guardCell(in)); back != in {
			t.Errorf("unguardCell(guardCell(%q)) = %q", in, back)
		}
	}
}

func TestBatchRowToSheetRow(t *testing.T) {
	rows := []int{7, 9, 12}
	for in, want := range map[string]string{
		"row 1: private id 5 is taken": "row 9: private id 5 is taken",
		"row 3: out of range":          "row 3: out of range",
		"no row here":                  "no row here",
		"row x: y":                     "row x: y",
	} {
		if got := batchRowToSheetRow(in, rows); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
}

// FuzzImportCSV: any upload is refused cleanly or read within the limits.
func FuzzImportCSV(f *testing.F) {
	f.Add("First Name,Last Name,Email,Blue Mobile ID Configuration,Private ID/CSN\nA,B,a@b.c,London,12\n")
	f.Add("\ufeffFirst Name;Last Name;Email\r\n\"x;y\";z;w@v.io\r\n")
	f.Add(",Export\n,Company Name,X\n\nFirst Name,Last Name,Email,Phone Number\n'=1,b,c@d.e,'+3\n")
	f.Add("PK\x03\x04")
	f.Fuzz(func(t *testing.T, body string) {
		tb, h, closeFile, e := openImport("text/csv", []byte(body))
		if e != nil {
			if e.status != 400 && e.status != 413 || e.msg == "" {
				t.Fatalf("refusal %+v", e)
			}
			return
		}
		defer closeFile()
		file, e := readImport(tb, h, "s", "a")
		if e != nil {
			return
		}
		if len(file.cards) != len(file.rows) || len(file.errs) > maxImportErrors || len(file.cards)+file.invalid > MaxImportRows {
			t.Fatalf("%d cards, %d rows, %d errors", len(file.cards), len(file.rows), len(file.errs))
		}
		for i, c := range file.cards {
			if c.NewCardholder == nil || c.NewCardholder.FirstName == "" || c.NewCardholder.LastName == "" || c.NewCardholder.Email == "" {
				t.Fatalf("card %d passed without a name or email: %+v", i, c)
			}
			if i > 0 && file.rows[i] <= file.rows[i-1] {
				t.Fatalf("row numbers out of order: %v", file.rows)
			}
		}
	})
}

// FuzzImportXLSX feeds mutated workbooks to the xlsx path.
func FuzzImportXLSX(f *testing.F) {
	sw, _ := newSheetWriter("Sheet1")
	sw.block("Export", time.Now(), blockField{"Company Name", "C"})
	sw.columns(importColumnNames[:]...)
	sw.add("=A", "B", "a@b.c", "+1", "London", "12")
	b, _ := sw.finish()
	sw.close()
	f.Add(b)
	f.Fuzz(func(t *testing.T, body []byte) {
		tb, h, closeFile, e := openImport(xlsxContentType, body)
		if e != nil {
			return
		}
		defer closeFile()
		readImport(tb, h, "s", "a")
	})
}

// A batch refused after others were applied says how far the import got.
func TestImportStoppedSaysHowFar(t *testing.T) {
	file := &importFile{rows: []int{2, 3, 5, 6}}
	for _, tc := range []struct {
		status  int
		code    string
		msg     string
		withKey bool
		want    []string
	}{
		{409, "duplicate_private_id", "row 1: private id 7 is already used", false,
			[]string{"row 6: private id 7", "The 2 cards of the rows up to row 3 were imported", "remove the rows up to row 3"}},
		{503, "unknown_outcome", "the leader changed", true,
			[]string{"the leader changed", "same Idempotency-Key"}},
		{503, "no_quorum", "no leader", false,
			[]string{"from row 5 on may or may not be", "Idempotency-Key"}},
	} {
		var answer capture
		if tc.status == 503 {
			answer.Header().Set("Retry-After", "1")
		}
		writeError(&answer, tc.status, tc.code, "", tc.msg)
		rec := httptest.NewRecorder()
		writeImportStopped(rec, &answer, file, importBatch{2, 4}, 2, tc.withKey)
		var body struct {
			Error   errorDetail
			Created int
		}
		json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != tc.status || body.Error.Code != tc.code || body.Created != 2 || (tc.status == 503) != (rec.Header().Get("Retry-After") == "1") {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		for _, w := range tc.want {
			if !strings.Contains(body.Error.Message, w) {
				t.Errorf("%q does not say %q", body.Error.Message, w)
			}
		}
	}
}

// A large picture is not text and is not scanned as such; a large run of
// text in an XML part is refused whatever the part is called.
func TestCheckZipScansXMLOnly(t *testing.T) {
	build := func(name string, data []byte) []byte {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		w, _ := zw.Create(name)
		w.Write(data)
		zw.Close()
		return b.Bytes()
	}
	picture := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7, 1, 200, 3}, 50_000)...)
	if e := checkZip(build("xl/media/image1.png", picture)); e != nil {
		t.Fatalf("a picture refused: %+v", e)
	}
	text := append([]byte("<t>"), bytes.Repeat([]byte("ab>"), 40_000)...)
	if e := checkZip(build("xl/worksheets/anything.dat", text)); e == nil || e.code != "file_too_large" {
		t.Fatalf("a long run of text in a part not named like a sheet: %+v", e)
	}
}
