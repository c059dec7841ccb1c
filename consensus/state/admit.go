package state

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"lintel/consensus/command"
)

// Bounds on the text a command carries. Admit applies them where a command
// is made from a request (the API), not in ApplyAt: the log an earlier build
// wrote must apply the same on every build, and a bound that changed would
// make two builds decide one old entry differently.
const (
	// MaxTextBytes bounds a text field unless its `max` tag says otherwise.
	MaxTextBytes = 1000
	// MaxFieldKeyBytes bounds the name of an extra field ("Field 1"…).
	MaxFieldKeyBytes = 50
)

// Admit refuses a command whose text is not UTF-8, holds a NUL, or is longer
// than its field's bound: every string of the body, nested ones and the keys
// and values of maps included. Its error names the field as the command
// names it (the JSON name, with the path into lists and maps), which is the
// request's own name for most writes; a few commands nest what the request
// sent flat (a card's new cardholder: new_cardholder.phone).
func Admit(c command.Command) *Rejection {
	if c.Body == nil {
		return nil
	}
	return admitValue(reflect.ValueOf(c.Body), "", MaxTextBytes)
}

func admitValue(v reflect.Value, path string, limit int) *Rejection {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return admitValue(v.Elem(), path, limit)
	case reflect.String:
		return admitText(path, v.String(), limit)
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			max := MaxTextBytes
			if m := f.Tag.Get("max"); m != "" {
				max, _ = strconv.Atoi(m)
			}
			if f.Anonymous {
				name = strings.TrimSuffix(path, ".")
			} else if path != "" {
				name = path + "." + name
			}
			if r := admitValue(v.Field(i), name, max); r != nil {
				return r
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return nil // bytes: keys, signatures, files, bounded by the body's size
		}
		for i := range v.Len() {
			if r := admitValue(v.Index(i), fmt.Sprintf("%s[%d]", path, i), limit); r != nil {
				return r
			}
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			k := it.Key()
			if k.Kind() == reflect.String {
				if r := admitText(path+" name", k.String(), MaxFieldKeyBytes); r != nil {
					return r
				}
			}
			if r := admitValue(it.Value(), path+"."+fmt.Sprint(k.Interface()), limit); r != nil {
				return r
			}
		}
	}
	return nil
}

func admitText(field, s string, limit int) *Rejection {
	switch {
	case !utf8.ValidString(s):
		return reject(Invalid, "invalid_value", field, "%s is not valid UTF-8 text", field)
	case strings.IndexByte(s, 0) >= 0:
		return reject(Invalid, "invalid_value", field, "%s holds a NUL character", field)
	case len(s) > limit:
		return reject(Invalid, "too_long", field, "%s is %d bytes long; at most %d are kept: shorten it", field, len(s), limit)
	}
	return nil
}
