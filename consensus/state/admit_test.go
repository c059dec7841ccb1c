package state

import (
	"strings"
	"testing"

	"lintel/consensus/command"
)

func TestAdmit(t *testing.T) {
	long := strings.Repeat("é", MaxTextBytes) // 2 bytes each: over the bound
	update := "Lee"
	cases := []struct {
		name  string
		body  command.Body
		field string // "" when admitted
	}{
		{"short text", &command.CreateCardholder{FirstName: "Ann", Fields: map[string]string{"badge": "1"}}, ""},
		{"long first name", &command.CreateCardholder{FirstName: long}, "first_name"},
		{"long field value", &command.CreateCardholder{Fields: map[string]string{"badge": long}}, "fields.badge"},
		{"long field name", &command.CreateCardholder{Fields: map[string]string{strings.Repeat("k", 51): "1"}}, "fields name"},
		{"nested in a list", &command.ImportCards{Cards: []command.CreateCard{{ID: "a"}, {ID: long}}}, "cards[1].id"},
		{"through a pointer", &command.UpdateCardholder{LastName: &update, Email: &long}, "email"},
		{"NUL", &command.CreateSite{Name: "a\x00b"}, "name"},
		{"invalid UTF-8", &command.CreateSite{Name: "a\xffb"}, "name"},
		{"template body within its own bound", &command.SetTemplate{Body: strings.Repeat("x", 9000)}, ""},
		{"template body over it", &command.SetTemplate{Body: strings.Repeat("x", 10001)}, "body"},
		{"bytes are not text", &command.LoadVoucher{Voucher: []byte(long + "\xff")}, ""},
	}
	for _, tc := range cases {
		rej := Admit(command.Command{Body: tc.body})
		switch {
		case tc.field == "" && rej != nil:
			t.Errorf("%s: refused: %v", tc.name, rej)
		case tc.field != "" && (rej == nil || rej.Field != tc.field):
			t.Errorf("%s: %v, want a refusal of %q", tc.name, rej, tc.field)
		}
	}
}
