package api

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"lintel/consensus/command"
	"lintel/consensus/state"
)

// Reading a card import (SPEC 4.4): an xlsx or csv upload with the columns of
// the card export, turned into CreateCard commands and the row errors a
// person can act on. Everything here is bounded: the body, the unpacked
// workbook, the number of rows, the errors listed.

const (
	// MaxImportBody bounds an import file (the API's MaxBody is for JSON).
	MaxImportBody = 64 << 20
	// MaxImportRows bounds the cards of one import.
	MaxImportRows = 100_000
	// maxImportErrors is how many row errors an answer lists.
	maxImportErrors = 100
	// headerSearchRows: the header row is looked for among a sheet's first
	// rows, since the export puts its header block above it (row 6).
	headerSearchRows = 20
	// importUnzipLimit bounds the whole unpacked workbook (zip bombs);
	// importPartLimit bounds each part excelize keeps in memory. Worksheets
	// and shared strings above it go to a temporary file and are streamed.
	importUnzipLimit = 128 << 20 // a 100 000-row export unpacks to about 37 MiB
	importPartLimit  = 16 << 20
	importMaxParts   = 1000
	// importMaxRatio bounds how far a part may unpack beyond its packed
	// size (an export's sheet is about 11:1); a bomb is 1000:1 and more.
	importMaxRatio = 200
	// importMaxRun bounds the text between two XML tags of a sheet or the
	// shared strings, so no cell (nor attribute) is read into memory whole
	// when it is large: a person's spreadsheet has nothing near it.
	importMaxRun = 64 << 10
	// maxPhoneLen keeps a row, and so a batch command, small.
	maxPhoneLen = 64
	// maxBatchBytes keeps an ImportCards command under command.MaxSize
	// with room for the envelope.
	maxBatchBytes = 3 << 20
	// importBatchRows is the most cards one ImportCards command of an
	// import carries (the state takes up to state.MaxImportBatch): the FSM
	// applies a command at a time, so a batch is how long other writes wait
	// behind it; 1000 rows apply in about 30 ms at 100 000 cards.
	importBatchRows = 1000
)

// uploadError is a refusal of the file as a whole.
type uploadError struct {
	status int
	code   string
	msg    string
}

func (e *uploadError) Error() string { return e.msg }

func badFile(code, format string, args ...any) *uploadError {
	return &uploadError{status: http.StatusBadRequest, code: code, msg: fmt.Sprintf(format, args...)}
}

// The columns an import reads, in the order of the export (figure 93).
const (
	colFirstName = iota
	colLastName
	colEmail
	colPhone
	colConfig
	colPrivateID
	numImportColumns
)

var importColumnNames = [numImportColumns]string{
	"First Name", "Last Name", "Email", "Phone Number", "Blue Mobile ID Configuration", "Private ID/CSN",
}

// importFieldNames are the API names of the columns, used in row errors.
var importFieldNames = [numImportColumns]string{
	"first_name", "last_name", "email", "phone", "reader_config", "private_id",
}

// headerAliases maps a header, lower-cased with only letters and digits
// kept, to its column: the export's words and the usual variants.
var headerAliases = map[string]int{
	"firstname": colFirstName, "givenname": colFirstName,
	"lastname": colLastName, "surname": colLastName, "familyname": colLastName,
	"email": colEmail, "emailaddress": colEmail, "mail": colEmail,
	"phonenumber": colPhone, "phone": colPhone, "telephone": colPhone, "telephonenumber": colPhone, "mobile": colPhone,
	"bluemobileidconfiguration": colConfig, "configuration": colConfig, "configurationname": colConfig,
	"readerconfiguration": colConfig, "readerconfig": colConfig,
	"privateidcsn": colPrivateID, "privateid": colPrivateID, "csn": colPrivateID, "privateidstidmobileid": colPrivateID,
}

func headerKey(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return unicode.ToLower(r)
		}
		return -1
	}, s)
}

// importHeader is where each column sits in a row (-1: not in the file).
type importHeader [numImportColumns]int

// parseHeader reports whether cells are the header row: it names at least
// First Name and Last Name. A header row with a problem is an error.
func parseHeader(row int, cells []string) (importHeader, bool, *uploadError) {
	var h importHeader
	for i := range h {
		h[i] = -1
	}
	for pos, c := range cells {
		col, ok := headerAliases[headerKey(unguardCell(c))]
		if !ok {
			continue // other columns (a report's dates, a status) are ignored
		}
		if h[col] >= 0 {
			return h, true, badFile("duplicate_column", "row %d names the column %s twice; keep one", row, importColumnNames[col])
		}
		h[col] = pos
	}
	if h[colFirstName] < 0 || h[colLastName] < 0 {
		return h, false, nil
	}
	if h[colEmail] < 0 {
		return h, true, badFile("missing_column", "the header row (row %d) has no Email column; every card needs the address its activation link is sent to", row)
	}
	return h, true, nil
}

// table is an uploaded sheet read one row at a time.
type table interface {
	// next returns the row number a person sees and the row's cells.
	next() (row int, cells []string, ok bool)
	err() error
}

// findHeader reads the first rows of t until the header row.
func findHeader(t table) (importHeader, bool, *uploadError) {
	for range headerSearchRows {
		row, cells, ok := t.next()
		if !ok {
			break
		}
		if h, found, e := parseHeader(row, cells); found || e != nil {
			return h, found, e
		}
	}
	return importHeader{}, false, nil
}

func errNoHeader() *uploadError {
	return badFile("missing_header", "no header row found: one of the first %d rows must name the columns, as the export does: %s",
		headerSearchRows, strings.Join(importColumnNames[:], ", "))
}

// xlsxTable reads a worksheet with excelize's row iterator, which streams
// the sheet's XML instead of loading the sheet.
type xlsxTable struct {
	rows *excelize.Rows
	n    int
	e    error
}

func (t *xlsxTable) next() (int, []string, bool) {
	if t.e != nil || !t.rows.Next() {
		return 0, nil, false
	}
	t.n++ // Next yields empty rows too, so the count is the row number
	cells, err := t.rows.Columns()
	if err != nil {
		t.e = err
		return 0, nil, false
	}
	return t.n, cells, true
}

func (t *xlsxTable) err() error {
	if t.e != nil {
		return t.e
	}
	return t.rows.Error()
}

type csvTable struct {
	r *csv.Reader
	e error
}

func (t *csvTable) next() (int, []string, bool) {
	if t.e != nil {
		return 0, nil, false
	}
	rec, err := t.r.Read()
	if err != nil {
		if err != io.EOF {
			t.e = err
		}
		return 0, nil, false
	}
	line, _ := t.r.FieldPos(0) // blank lines are skipped but still counted
	return line, rec, true
}

func (t *csvTable) err() error { return t.e }

var (
	zipMagic = []byte("PK\x03\x04")
	oleMagic = []byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1} // .xls, or an encrypted workbook
	utf8BOM  = []byte{0xef, 0xbb, 0xbf}
)

// csvTypes are the Content-Types a csv upload arrives with (browsers on
// Windows label .csv as application/vnd.ms-excel).
var csvTypes = map[string]bool{
	"text/csv": true, "application/csv": true, "text/comma-separated-values": true, "text/plain": true,
	"application/vnd.ms-excel": true, "application/octet-stream": true, "": true,
}

// openImport finds the sheet and its header row in an upload. release
// releases the workbook's temporary files.
func openImport(contentType string, data []byte) (t table, h importHeader, release func(), e *uploadError) {
	mediaType, _, _ := mime.ParseMediaType(contentType)
	switch {
	case bytes.HasPrefix(data, zipMagic):
		return openXLSX(data)
	case bytes.HasPrefix(data, oleMagic):
		return nil, h, nil, badFile("unsupported_file", "this is an old .xls or a password-protected workbook; save it as an Excel Workbook (.xlsx) without a password, or as CSV UTF-8")
	case mediaType == xlsxContentType:
		return nil, h, nil, badFile("malformed_file", "the body is not an xlsx workbook: an xlsx file is a zip archive, and this one does not start like one")
	case csvTypes[mediaType]:
		return openCSV(data)
	}
	return nil, h, nil, badFile("unsupported_file", "send the file as xlsx (Content-Type %s) or as csv (Content-Type text/csv), not %s", xlsxContentType, mediaType)
}

func openCSV(data []byte) (table, importHeader, func(), *uploadError) {
	data = bytes.TrimPrefix(data, utf8BOM)
	if !utf8.Valid(data) {
		return nil, importHeader{}, nil, badFile("invalid_encoding", "the csv is not UTF-8 text; in Excel, save it as \"CSV UTF-8\"")
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = csvSeparator(data)
	r.FieldsPerRecord = -1 // rows may stop at their last filled cell
	r.ReuseRecord = true
	t := &csvTable{r: r}
	h, found, e := findHeader(t)
	if e == nil && t.err() != nil {
		e = badFile("malformed_file", "the csv cannot be read: %v", t.err())
	}
	if e == nil && !found {
		e = errNoHeader()
	}
	if e != nil {
		return nil, h, nil, e
	}
	return t, h, func() {}, nil
}

// csvSeparator guesses the separator from the first lines: Excel writes
// ';' where the decimal mark is a comma, and some tools use tabs.
func csvSeparator(data []byte) rune {
	head := data
	for i, n := 0, 0; i < len(data); i++ {
		if data[i] == '\n' {
			if n++; n == headerSearchRows {
				head = data[:i]
				break
			}
		}
	}
	best, bestN := ',', bytes.Count(head, []byte{','})
	for _, sep := range []rune{';', '\t'} {
		if n := bytes.Count(head, []byte{byte(sep)}); n > bestN {
			best, bestN = sep, n
		}
	}
	return best
}

func openXLSX(data []byte) (table, importHeader, func(), *uploadError) {
	var h importHeader
	if e := checkZip(data); e != nil {
		return nil, h, nil, e
	}
	f, err := excelize.OpenReader(bytes.NewReader(data), excelize.Options{
		UnzipSizeLimit: importUnzipLimit, UnzipXMLSizeLimit: importPartLimit,
	})
	if err != nil {
		if f != nil {
			f.Close()
		}
		return nil, h, nil, badFile("malformed_file", "the file is not a workbook this server can read: %v", err)
	}
	// The first sheet with a header row is the one imported, so a workbook
	// may keep instructions on a sheet of their own.
	for _, sheet := range f.GetSheetList() {
		rows, err := f.Rows(sheet)
		if err != nil {
			continue
		}
		t := &xlsxTable{rows: rows}
		hh, found, e := findHeader(t)
		if e == nil && t.err() != nil {
			e = badFile("malformed_file", "sheet %q cannot be read: %v", sheet, t.err())
		}
		if e != nil || found {
			done := func() { rows.Close(); f.Close() }
			if e != nil {
				done()
				return nil, hh, nil, e
			}
			return t, hh, done, nil
		}
		rows.Close()
	}
	f.Close()
	return nil, h, nil, errNoHeader()
}

// checkZip bounds what opening the workbook costs before excelize unpacks
// it: the number of parts, the unpacked total, and the size of the parts
// excelize keeps in memory. archive/zip refuses to unpack more than a part
// declares, so the declared sizes can be trusted.
func checkZip(data []byte) *uploadError {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return badFile("malformed_file", "the file starts like an xlsx workbook but is not a readable zip archive: %v", err)
	}
	if len(zr.File) > importMaxParts {
		return badFile("malformed_file", "the workbook has %d parts; a spreadsheet has far fewer, so this is not one", len(zr.File))
	}
	var total uint64
	for _, zf := range zr.File {
		total += zf.UncompressedSize64
		if total > importUnzipLimit {
			return &uploadError{status: http.StatusRequestEntityTooLarge, code: "file_too_large",
				msg: fmt.Sprintf("the workbook unpacks to more than %d MiB; split it into smaller files", importUnzipLimit>>20)}
		}
		name := strings.ToLower(strings.ReplaceAll(zf.Name, "\\", "/"))
		streamed := strings.HasPrefix(name, "xl/worksheets/sheet") || name == "xl/sharedstrings.xml"
		if !streamed && zf.UncompressedSize64 > importPartLimit {
			return badFile("malformed_file", "the workbook part %s unpacks to %d MiB; a spreadsheet's parts other than its sheets are small, so this is not one",
				zf.Name, zf.UncompressedSize64>>20)
		}
		if zf.UncompressedSize64 > 1<<20 && zf.UncompressedSize64/max(zf.CompressedSize64, 1) > importMaxRatio {
			return &uploadError{status: http.StatusRequestEntityTooLarge, code: "file_too_large",
				msg: fmt.Sprintf("the workbook part %s unpacks from %d KiB to %d MiB, far beyond what a spreadsheet does: it is refused unread",
					zf.Name, zf.CompressedSize64>>10, zf.UncompressedSize64>>20)}
		}
	}
	// Every part large enough to hold such a cell, whatever its name: the
	// workbook's relationships, not the name, say which parts are sheets.
	for _, zf := range zr.File {
		if zf.UncompressedSize64 > importMaxRun {
			if e := checkRuns(zf); e != nil {
				return e
			}
		}
	}
	return nil
}

// checkRuns reads a part through once, in constant memory, and refuses it
// when a run of bytes between XML tags (a cell's text) or inside one is
// longer than importMaxRun: excelize would read such a cell whole. A '>'
// in text is text (XML allows it there); only a '<' starts a tag and only
// the '>' that ends one ends it.
func checkRuns(zf *zip.File) *uploadError {
	rc, err := zf.Open()
	if err != nil {
		return badFile("malformed_file", "the workbook part %s cannot be read: %v", zf.Name, err)
	}
	defer rc.Close()
	buf := make([]byte, 64<<10)
	run, inTag := 0, false
	for first := true; ; first = false {
		n, err := rc.Read(buf)
		if first {
			// Only XML is read as text: a picture or a macro part (whatever
			// its name) starts with something other than '<'.
			head := bytes.TrimLeft(bytes.TrimPrefix(buf[:n], []byte("\xef\xbb\xbf")), " \t\r\n")
			if len(head) > 0 && head[0] != '<' {
				return nil
			}
		}
		for _, c := range buf[:n] {
			if c == '<' || (c == '>' && inTag) {
				run, inTag = 0, c == '<'
				continue
			}
			if run++; run > importMaxRun {
				return &uploadError{status: http.StatusRequestEntityTooLarge, code: "file_too_large",
					msg: fmt.Sprintf("a cell of the workbook (part %s) holds more than %d KiB of text; no column takes that much", zf.Name, importMaxRun>>10)}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return badFile("malformed_file", "the workbook part %s cannot be read: %v", zf.Name, err)
		}
	}
}

// rowError is one reason a row was refused; row is the row number a
// person sees in the sheet.
type rowError struct {
	Row     int    `json:"row"`
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// importFile is an upload read into commands: the rows that passed the
// checks made here, in file order, and the first errors of the others.
type importFile struct {
	cards   []command.CreateCard
	rows    []int // the row number of each card
	errs    []rowError
	invalid int // rows with an error
	// firstRow is the first row of each reader configuration + private id,
	// to tell a person which rows repeat one.
	firstRow map[string]int
}

// readImport reads every row after the header.
func readImport(t table, h importHeader, siteID, accountID string) (*importFile, *uploadError) {
	file := &importFile{firstRow: map[string]int{}}
	count := 0
	for {
		row, cells, ok := t.next()
		if !ok {
			break
		}
		var v [numImportColumns]string
		empty := true
		for col, pos := range h {
			if pos >= 0 && pos < len(cells) {
				v[col] = strings.TrimSpace(unguardCell(cells[pos]))
				empty = empty && v[col] == ""
			}
		}
		if empty {
			continue
		}
		if count++; count > MaxImportRows {
			return nil, &uploadError{status: http.StatusRequestEntityTooLarge, code: "too_many_rows",
				msg: fmt.Sprintf("the file has more than %d cards; split it into files of at most %d rows", MaxImportRows, MaxImportRows)}
		}
		if errs := checkImportRow(row, v); len(errs) > 0 {
			file.invalid++
			for _, e := range errs {
				if len(file.errs) < maxImportErrors {
					file.errs = append(file.errs, e)
				}
			}
			continue
		}
		req := createCardRequest{FirstName: v[colFirstName], LastName: v[colLastName], Email: v[colEmail],
			Phone: v[colPhone], ReaderConfig: v[colConfig], PrivateID: v[colPrivateID]}
		file.cards = append(file.cards, *createCardBody(siteID, accountID, req))
		file.rows = append(file.rows, row)
		if req.PrivateID != "" {
			if k := req.ReaderConfig + "\x00" + req.PrivateID; file.firstRow[k] == 0 {
				file.firstRow[k] = row
			}
		}
	}
	if err := t.err(); err != nil {
		return nil, badFile("malformed_file", "the file cannot be read to its end: %v", err)
	}
	if count == 0 {
		return nil, badFile("empty_file", "the file has a header row but no cards under it")
	}
	return file, nil
}

// checkImportRow finds what is wrong with a row on its own, every field at
// once; what depends on the registry (configurations, duplicates) is left
// to State.CheckImport. The rules are the state's, worded with the columns.
func checkImportRow(row int, v [numImportColumns]string) []rowError {
	var errs []rowError
	add := func(col int, code, format string, args ...any) {
		errs = append(errs, rowError{Row: row, Field: importFieldNames[col], Code: code, Message: fmt.Sprintf(format, args...)})
	}
	for col, s := range v {
		if !utf8.ValidString(s) {
			add(col, "invalid_value", "%s is not valid text; save the file as UTF-8", importColumnNames[col])
			v[col] = ""
		}
	}
	for _, col := range []int{colFirstName, colLastName} {
		switch s := v[col]; {
		case s == "":
			add(col, "required", "%s is empty", importColumnNames[col])
		case utf8.RuneCountInString(s) > state.MaxNameLen:
			add(col, "too_long", "%s is longer than %d characters", importColumnNames[col], state.MaxNameLen)
		case strings.ContainsAny(s, "\x00\r\n\t"):
			add(col, "invalid_value", "%s may not contain line breaks or tabs", importColumnNames[col])
		}
	}
	switch e := strings.ToLower(v[colEmail]); {
	case e == "":
		add(colEmail, "required", "Email is empty; the activation link is sent there")
	case !plausibleEmail(e):
		add(colEmail, "invalid_value", "%q is not an email address (a phone can receive mail as digits@carrier-domain)", v[colEmail])
	}
	if utf8.RuneCountInString(v[colPhone]) > maxPhoneLen {
		add(colPhone, "too_long", "Phone Number is longer than %d characters", maxPhoneLen)
	}
	config, pid := v[colConfig], v[colPrivateID]
	switch {
	case config == "" && pid != "":
		add(colConfig, "required", "a Private ID/CSN needs its Blue Mobile ID Configuration")
	case config != "" && pid == "":
		add(colPrivateID, "required", "Private ID/CSN is empty: a card of configuration %q carries the number recorded in the access control system", config)
	case utf8.RuneCountInString(config) > state.MaxNameLen:
		add(colConfig, "too_long", "Blue Mobile ID Configuration is longer than %d characters", state.MaxNameLen)
	}
	if pid != "" && (len(pid) > 20 || strings.Trim(pid, "0123456789") != "") {
		add(colPrivateID, "invalid_value", "Private ID/CSN %q must be 1 to 20 digits", pid)
	}
	return errs
}

// plausibleEmail is the state's rule for addresses (cardholders.go).
func plausibleEmail(e string) bool {
	at := strings.IndexByte(e, '@')
	return at > 0 && at == strings.LastIndexByte(e, '@') && strings.Contains(e[at+1:], ".") &&
		len(e) <= 254 && !strings.ContainsAny(e, " \t\r\n<>,;\"")
}

// importBatch is a run of cards sent as one ImportCards command.
type importBatch struct{ start, end int }

// cutBatches splits the cards into commands of at most importBatchRows
// cards and maxBatchBytes of JSON. The cut depends only on the file, so a
// retried import cuts the same batches (their idempotency keys rely on it).
func cutBatches(cards []command.CreateCard) []importBatch {
	var out []importBatch
	start, size := 0, 0
	for i := range cards {
		n := cardJSONSize(&cards[i])
		if i > start && (i-start == importBatchRows || size+n > maxBatchBytes) {
			out = append(out, importBatch{start, i})
			start, size = i, 0
		}
		size += n
	}
	if start < len(cards) {
		out = append(out, importBatch{start, len(cards)})
	}
	return out
}

// cardJSONSize is an upper bound of an imported card's size in the
// command's JSON: the field names (237 bytes with empty values, kind and
// max_uses at their longest) plus each text as escaped.
func cardJSONSize(c *command.CreateCard) int {
	const fixed = 320
	n := fixed
	for _, s := range []string{c.ID, c.SiteID, c.AccountID, c.CardholderID, c.ReaderConfig, c.PrivateID} {
		n += jsonTextSize(s)
	}
	if h := c.NewCardholder; h != nil {
		for _, s := range []string{h.ID, h.AccountID, h.FirstName, h.LastName, h.Email, h.Phone} {
			n += jsonTextSize(s)
		}
	}
	return n
}

// jsonTextSize bounds a string's length in JSON: encoding/json writes
// controls, quotes, backslashes and <>& as \u escapes (at most 6 bytes), and
// U+2028/U+2029 (3 bytes) as 6; text is checked to be valid UTF-8.
func jsonTextSize(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b < 0x20 || b == '"' || b == '\\' || b == '<' || b == '>' || b == '&':
			n += 6
		case b >= 0x80:
			n += 2
		default:
			n++
		}
	}
	return n
}
