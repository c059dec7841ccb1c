package state

import (
	"lintel/consensus/command"
)

// MaxImportBatch bounds one ImportCards command; the API splits files.
const MaxImportBatch = 5000

// RowError is why one row of an import was refused (rows count from 0).
type RowError struct {
	Row       int        `json:"row"`
	Rejection *Rejection `json:"error"`
}

// applyImportCards creates every card of the batch, or none: on the first
// refusal it removes what the batch already added.
func (s *State) applyImportCards(c command.Command, b *command.ImportCards, ch *changes) (any, *Rejection) {
	if len(b.Cards) == 0 || len(b.Cards) > MaxImportBatch {
		return nil, reject(Invalid, "invalid_command", "", "an import batch holds 1 to %d cards", MaxImportBatch)
	}
	// Each row applies into the command's transaction (ApplyAt): a refused
	// row refuses the batch, and none of the rows before it stays.
	for i := range b.Cards {
		cc := b.Cards[i]
		if _, rej := s.applyCreateCard(c, &cc, ch); rej != nil {
			r := *rej
			r.Message = "row " + itoa(i) + ": " + r.Message
			return nil, &r
		}
	}
	return map[string]int{"created": len(b.Cards)}, nil
}

// CheckImport tries the cards on a copy of the state and returns every
// refused row; the state itself does not change. The API runs it on the
// whole file before it sends anything.
func (s *State) CheckImport(at command.Header, cards []command.CreateCard) []RowError {
	trial := s.Clone()
	var errs []RowError
	ch := &changes{}
	for i := range cards {
		cc := cards[i]
		c := command.Command{Header: at, Body: &cc}
		if rej := Validate(c); rej != nil {
			errs = append(errs, RowError{Row: i, Rejection: rej})
			continue
		}
		if _, rej := trial.applyCreateCard(c, &cc, ch); rej != nil {
			errs = append(errs, RowError{Row: i, Rejection: rej})
		}
		ch.list = ch.list[:0]
	}
	return errs
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}
