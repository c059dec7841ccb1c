package node

import (
	"testing"

	"lintel/consensus/command"
	"lintel/replication"
)

// A node makes a command of a newer type only when every member's build
// knows it; a member gossip says nothing about counts as Baseline.
func TestLowestCommandLevel(t *testing.T) {
	members := map[string]replication.Member{
		"a": {Meta: replication.Meta{ID: "a", Commands: uint8(command.Last) + 2}},
		"b": {Meta: replication.Meta{ID: "b", Commands: uint8(command.Last) + 1}},
		"c": {Meta: replication.Meta{ID: "c"}}, // an older build: no level gossiped
	}
	get := func(id string) (replication.Member, bool) { m, ok := members[id]; return m, ok }
	if who, lvl := lowestCommandLevel([]string{"a", "b"}, get); who != "" || lvl != command.Last {
		t.Fatalf("a, b: %s %d (this build knows no further than Last)", who, lvl)
	}
	for _, other := range []string{"c", "unknown"} {
		who, lvl := lowestCommandLevel([]string{"a", other}, get)
		if lvl != command.Baseline || (command.Baseline < command.Last && who != other) {
			t.Fatalf("a, %s: %q %d", other, who, lvl)
		}
	}
	members["b"] = replication.Member{Meta: replication.Meta{ID: "b", Commands: uint8(command.Baseline) - 3}}
	if who, lvl := lowestCommandLevel([]string{"a", "b", "c"}, get); who != "b" || lvl != command.Baseline-3 {
		t.Fatalf("b behind: %s %d", who, lvl)
	}
}
