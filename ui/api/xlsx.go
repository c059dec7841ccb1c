package api

import (
	"bytes"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"lintel/consensus/state"
)

// The pieces every xlsx export shares (SPEC 4.8, seed 003 figures 47 and
// 88–93): the header block, the date format, the status words and the guard
// against formulas. Later lists build on sheetWriter rather than on excelize.

// xlsxContentType is what exports answer with and what imports accept.
const xlsxContentType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

// dateNumFmt is the seed's date format in cells (14-12-2018 09:40) as a
// number format: dates stay real dates, so a person can sort and filter them.
const dateNumFmt = "dd-mm-yyyy hh:mm"

// exportZone is the zone of exported dates. The console shows UTC too;
// sites carry no zone of their own yet.
var exportZone = time.UTC

// cardStatusWords are the console's words for card statuses (SPEC 4).
var cardStatusWords = map[string]string{
	state.CardCreated:       "Created",
	state.CardSent:          "Created and Email Sent",
	state.CardActivated:     "Activated",
	state.CardPendingRevoke: "Pending Revoke",
	state.CardRevoked:       "Revoked",
	state.CardLost:          "Lost",
	state.CardExpired:       "Expired",
}

// messageStatusWords are the words for outbox messages.
var messageStatusWords = map[string]string{
	state.MessageQueued: "Queued",
	state.MessageSent:   "Sent",
	state.MessageFailed: "Failed",
}

// CardStatusWord is a card status as people read it; the console uses it too.
func CardStatusWord(machine string) string { return wordOf(cardStatusWords, machine) }

// wordOf looks a machine name up; an unknown name is shown as is.
func wordOf(words map[string]string, machine string) string {
	if w, ok := words[machine]; ok {
		return w
	}
	return machine
}

// formulaStarts are the first characters that make a spreadsheet read text
// as a formula (OWASP "CSV injection"); tab and CR start DDE tricks.
const formulaStarts = "=+-@\t\r"

// guardCell makes text that would start a formula inert with a leading '.
func guardCell(s string) string {
	if s != "" && strings.IndexByte(formulaStarts, s[0]) >= 0 {
		return "'" + s
	}
	return s
}

// unguardCell undoes guardCell, so an export imports back unchanged.
func unguardCell(s string) string {
	if len(s) >= 2 && s[0] == '\'' && strings.IndexByte(formulaStarts, s[1]) >= 0 {
		return s[1:]
	}
	return s
}

// blockField is one labelled line of the header block (Company Name, Site Name).
type blockField struct{ Label, Value string }

// sheetWriter streams one worksheet with excelize's StreamWriter, so a
// 100 k-row export neither builds the sheet in memory nor holds a lock. The
// first error is kept and returned by finish, as bufio.Writer does.
type sheetWriter struct {
	f    *excelize.File
	sw   *excelize.StreamWriter
	row  int
	bold int
	date int
	err  error
}

// newSheetWriter starts a workbook of one sheet. widths are the column
// widths in characters, set before any row (the stream writer needs that).
func newSheetWriter(sheet string, widths ...float64) (*sheetWriter, error) {
	f := excelize.NewFile()
	s := &sheetWriter{f: f}
	fail := func(err error) (*sheetWriter, error) { f.Close(); return nil, err }
	if err := f.SetSheetName("Sheet1", sheet); err != nil {
		return fail(err)
	}
	var err error
	if s.bold, err = f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}}); err != nil {
		return fail(err)
	}
	numFmt := dateNumFmt
	if s.date, err = f.NewStyle(&excelize.Style{CustomNumFmt: &numFmt}); err != nil {
		return fail(err)
	}
	if s.sw, err = f.NewStreamWriter(sheet); err != nil {
		return fail(err)
	}
	for i, w := range widths {
		if err := s.sw.SetColWidth(i+1, i+1, w); err != nil {
			return fail(err)
		}
	}
	return s, nil
}

// close removes the stream's temporary files.
func (s *sheetWriter) close() { s.f.Close() }

func (s *sheetWriter) setRow(cells []any) {
	if s.err != nil {
		return
	}
	s.row++
	cell, err := excelize.CoordinatesToCellName(1, s.row)
	if err == nil {
		err = s.sw.SetRow(cell, cells)
	}
	s.err = err
}

// title writes the one-line title of a dashboard export (figure 47).
func (s *sheetWriter) title(text string) {
	s.setRow([]any{excelize.Cell{StyleID: s.bold, Value: guardCell(text)}})
}

// block writes the header block of figures 88–93: in column B the kind
// ("Report" or "Export"), the labelled fields and the date, then an empty row.
func (s *sheetWriter) block(kind string, at time.Time, fields ...blockField) {
	s.setRow([]any{nil, excelize.Cell{StyleID: s.bold, Value: kind}})
	for _, f := range fields {
		s.setRow([]any{nil, excelize.Cell{StyleID: s.bold, Value: f.Label}, guardCell(f.Value)})
	}
	s.setRow([]any{nil, excelize.Cell{StyleID: s.bold, Value: "Date"}, s.dateCell(at)})
	s.setRow(nil)
}

// columns writes the bold column headers.
func (s *sheetWriter) columns(names ...string) {
	cells := make([]any, len(names))
	for i, n := range names {
		cells[i] = excelize.Cell{StyleID: s.bold, Value: n}
	}
	s.setRow(cells)
}

// add writes one data row. Text is guarded against formulas; times (and
// non-nil *time.Time) become dates in the seed's format; nil stays empty.
func (s *sheetWriter) add(values ...any) {
	cells := make([]any, len(values))
	for i, v := range values {
		switch v := v.(type) {
		case string:
			cells[i] = guardCell(v)
		case time.Time:
			cells[i] = s.dateCell(v)
		case *time.Time:
			if v != nil {
				cells[i] = s.dateCell(*v)
			}
		default:
			cells[i] = v
		}
	}
	s.setRow(cells)
}

// dateCell is a date cell showing the wall clock of exportZone: excelize
// writes a time's own clock fields, so the zone is applied here.
func (s *sheetWriter) dateCell(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	w := t.In(exportZone)
	wall := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, time.UTC)
	return excelize.Cell{StyleID: s.date, Value: wall}
}

// finish completes the workbook. Nothing is sent before it is complete, so
// a failure is still a clean 500.
func (s *sheetWriter) finish() ([]byte, error) {
	if s.err == nil {
		s.err = s.sw.Flush()
	}
	var buf bytes.Buffer
	if s.err == nil {
		_, s.err = s.f.WriteTo(&buf)
	}
	return buf.Bytes(), s.err
}

// writeSheet sends a finished workbook as a download named filename.
func writeSheet(w http.ResponseWriter, b []byte, filename string) error {
	h := w.Header()
	h.Set("Content-Type", xlsxContentType)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": safeFilename(filename)}))
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(b)
	return err
}

// safeFilename keeps a download name (built from site names) free of path
// separators and characters some systems refuse; strings.Map also turns
// invalid UTF-8 into U+FFFD.
func safeFilename(name string) string {
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || strings.ContainsRune(`/\:*?"<>|`, r) {
			return '_'
		}
		return r
	}, name)
	return name
}
