package api_test

import (
	"regexp"
	"testing"

	"lintel/internal/testnode"
)

type selfCheckBody struct {
	OK           *bool   `json:"ok"`
	Index        *uint64 `json:"index"`
	AppliedIndex *uint64 `json:"applied_index"`
	Digest       *string `json:"digest"`
	Error        string  `json:"error"`
}

var hexDigest = regexp.MustCompile(`^[0-9a-f]{64}$`)

func selfCheck(t *testing.T, c *testnode.Client, query string) selfCheckBody {
	t.Helper()
	r := c.Do(t, "GET", "/api/v1/self-check"+query, "", nil)
	expect(t, r, 200, "")
	var b selfCheckBody
	decodeInto(t, r, &b)
	if b.OK == nil || b.Index == nil || b.AppliedIndex == nil || b.Digest == nil {
		t.Fatalf("self-check lacks a field: %s", r.Body)
	}
	if !*b.OK {
		t.Fatalf("self-check: %s", r.Body)
	}
	if *b.Index != *b.AppliedIndex || *b.AppliedIndex == 0 {
		t.Fatalf("index %d, applied_index %d: %s", *b.Index, *b.AppliedIndex, r.Body)
	}
	if !hexDigest.MatchString(*b.Digest) {
		t.Fatalf("digest %q is not 64 hex characters", *b.Digest)
	}
	return b
}

// The self-check gives the digest of the replica at the index it reflects:
// the same while nothing is written, another after a write.
func TestSelfCheckDigest(t *testing.T) {
	n := testnode.Start(t, "selfcheck1")
	testnode.WaitReady(t, n)
	c := testnode.Login(t, n)

	first := selfCheck(t, c, "")
	again := selfCheck(t, c, "?consistency=strong")
	if *again.AppliedIndex != *first.AppliedIndex || *again.Digest != *first.Digest {
		t.Fatalf("no write, yet %d %s then %d %s", *first.AppliedIndex, *first.Digest, *again.AppliedIndex, *again.Digest)
	}

	expect(t, c.Do(t, "POST", "/api/v1/sites", `{"name":"Digest test"}`, nil), 201, "")
	after := selfCheck(t, c, "")
	if *after.AppliedIndex <= *first.AppliedIndex || *after.Digest == *first.Digest {
		t.Fatalf("after a write: %d %s, before %d %s", *after.AppliedIndex, *after.Digest, *first.AppliedIndex, *first.Digest)
	}
	if still := selfCheck(t, c, "?consistency=strong"); *still.AppliedIndex != *after.AppliedIndex || *still.Digest != *after.Digest {
		t.Fatalf("no write, yet %d %s then %d %s", *after.AppliedIndex, *after.Digest, *still.AppliedIndex, *still.Digest)
	}

	expect(t, c.Do(t, "GET", "/api/v1/self-check?consistency=eventual", "", nil), 400, "invalid_value")
}
