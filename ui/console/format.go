package console

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// dateLayout is the seed's date format: 17-10-2018 17:54.
const dateLayout = "02-01-2006 15:04"

// creationDate formats a time as the seed's site list does.
func creationDate(t time.Time) string { return t.Format(dateLayout) }

// machineTime is the exact instant for a <time datetime> attribute.
func machineTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// ago says how long before now t was, coarsely: people read it at a glance.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
}

// Words for the cluster's machine names (SPEC 4.1).
var clusterWords = map[string]string{
	"voter": "Voter", "nonvoter": "Non-voter",
	"leader": "Leader", "follower": "Follower", "candidate": "Candidate", "unknown": "Unknown",
	"alive": "Alive", "suspect": "Suspect", "dead": "Dead", "left": "Left",
}

// word turns a machine name into the console's word; an unknown name is shown as is.
func word(machine string) string {
	if w, ok := clusterWords[machine]; ok {
		return w
	}
	return machine
}

// sentence makes a rejection message (written lower-case for the API) read as
// a sentence on a page.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "?") && !strings.HasSuffix(s, "!") {
		s += "."
	}
	return s
}

// siteCount is the line above the list: "1 customer site", "3 customer sites".
func siteCount(n int) string {
	if n == 1 {
		return "1 customer site"
	}
	return fmt.Sprintf("%d customer sites", n)
}
