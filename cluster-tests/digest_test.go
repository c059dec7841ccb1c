package clustertests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"lintel/consensus/state"
)

// sameStateTimeout bounds checkSameState: time for the members to catch up
// and for a moment when they all report the same applied index.
const sameStateTimeout = 15 * time.Second

// selfCheckAnswer is one node's GET /api/v1/self-check, or why there is none.
type selfCheckAnswer struct {
	OK           bool   `json:"ok"`
	AppliedIndex uint64 `json:"applied_index"`
	Digest       string `json:"digest"`
	Error        string `json:"error"`
	failed       string // the request failed or was refused
}

func (a selfCheckAnswer) String() string {
	if a.failed != "" {
		return a.failed
	}
	s := fmt.Sprintf("applied_index %d digest %s", a.AppliedIndex, a.Digest)
	if !a.OK {
		s += " self-check failed: " + a.Error
	}
	return s
}

// checkSameState fails the test unless the given nodes (every node of the
// cluster when none is given) hold the same replicated state: the same
// digest at the same applied index. Nodes that are not running, are paused
// or are no longer members (removed) are left out. Errors, never Fatal: it
// runs from the cleanup that then kills the nodes.
func (c *cluster) checkSameState(nodes ...*node) {
	c.t.Helper()
	if c.token == "" {
		return // never logged in: the cluster was not initialized
	}
	if len(nodes) == 0 {
		nodes = c.nodes
	}
	var live []*node
	for _, n := range nodes {
		if n.running() && !n.paused {
			live = append(live, n)
		}
	}
	if len(live) < 2 {
		return
	}
	deadline := time.Now().Add(sameStateTimeout)
	live, note := c.members(live, time.Now().Add(sameStateTimeout/3))
	if len(live) < 2 {
		return
	}

	// A digest is a function of the applied index, so answers from different
	// polls compare too: a cluster that writes by itself (link expiry, the
	// leader's reconciling) need not stand still for all nodes at once.
	seen := map[uint64]map[*node]string{}
	var last map[*node]selfCheckAnswer
	for {
		last = c.selfChecks(live)
		for _, n := range live {
			a := last[n]
			if a.failed != "" {
				continue
			}
			if !a.OK {
				c.t.Errorf("self-check on %s: %s%s", n, a.Error, listAnswers(live, last, note))
				return
			}
			at := seen[a.AppliedIndex]
			if at == nil {
				at = map[*node]string{}
				seen[a.AppliedIndex] = at
			}
			at[n] = a.Digest
			for o, d := range at {
				if d != a.Digest {
					c.t.Errorf("%s and %s hold different states at applied index %d: digest %s on %s, %s on %s%s\n  %s",
						o, n, a.AppliedIndex, d, o, a.Digest, n, listAnswers(live, last, note), c.explainDifference(o, n))
					return
				}
			}
			if len(at) == len(live) {
				c.t.Logf("same state on %s at applied index %d (digest %s)", strings.Join(ids(live), ", "), a.AppliedIndex, a.Digest)
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Errorf("the nodes never reported the same applied index within %v, so their states could not be compared%s",
				sameStateTimeout, listAnswers(live, last, note))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// members keeps the nodes of live that the leader lists in its cluster view
// (Raft's configuration, and nodes joining that were not removed):
// a removed node stops applying and would never catch up. Without a leader
// until the deadline it keeps them all and says so in note.
func (c *cluster) members(live []*node, deadline time.Time) (_ []*node, note string) {
	for {
		for _, n := range live {
			v, err := c.view(n)
			if err != nil || v.Leader == "" {
				continue
			}
			i := slices.IndexFunc(c.nodes, func(x *node) bool { return x.id == v.Leader && x.running() && !x.paused })
			if i < 0 {
				continue
			}
			lv, err := c.view(c.nodes[i])
			if err != nil || lv.Leader != v.Leader {
				continue
			}
			var out []*node
			for _, x := range live {
				if _, ok := lv.node(x.id); ok {
					out = append(out, x)
				}
			}
			return out, ""
		}
		if time.Now().After(deadline) {
			return live, "\n(no running node knew a leader: every running node was compared)"
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// selfChecks asks every node at once, so that a quiet moment of the cluster
// finds them at the same index.
func (c *cluster) selfChecks(nodes []*node) map[*node]selfCheckAnswer {
	out := make(map[*node]selfCheckAnswer, len(nodes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			var a selfCheckAnswer
			r, err := c.doWith(ctx, c.client, n, "GET", "/api/v1/self-check", nil)
			switch {
			case err != nil:
				a.failed = err.Error()
			case r.status != 200:
				a.failed = r.String()
			default:
				if err := r.decode(&a); err != nil {
					a.failed = err.Error()
				} else if a.Digest == "" {
					a.failed = "no digest in " + r.String()
				}
			}
			mu.Lock()
			out[n] = a
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func listAnswers(nodes []*node, answers map[*node]selfCheckAnswer, note string) string {
	var lines []string
	for _, n := range nodes {
		lines = append(lines, fmt.Sprintf("  %s: %s", n, answers[n]))
	}
	sort.Strings(lines)
	return "; latest self-checks:\n" + strings.Join(lines, "\n") + note
}

// errRecorder keeps the errors of checkSameState instead of failing.
type errRecorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *errRecorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// checkSameState against fake nodes: what it compares and what it leaves out.
func TestCheckSameStateFake(t *testing.T) {
	type step struct {
		index  uint64
		digest string
	}
	for _, tc := range []struct {
		name    string
		answers map[string][]step // per node, one answer per poll (the last repeats)
		members []string          // the leader's view
		want    string            // in the error, or "" for none
	}{
		{"agree", map[string][]step{"a": {{5, "x"}}, "b": {{5, "x"}}}, []string{"a", "b"}, ""},
		{"differ", map[string][]step{"a": {{5, "x"}}, "b": {{5, "y"}}}, []string{"a", "b"}, "different states at applied index 5"},
		{"agree across polls", map[string][]step{"a": {{5, "x"}, {6, "z"}}, "b": {{4, "w"}, {5, "x"}}}, []string{"a", "b"}, ""},
		{"removed node left out", map[string][]step{"a": {{5, "x"}}, "b": {{5, "x"}}, "gone": {{3, "q"}}}, []string{"a", "b"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &errRecorder{TB: t}
			c := &cluster{t: rec, client: &http.Client{Timeout: 5 * time.Second}, token: "tok"}
			for id, steps := range tc.answers {
				var mu sync.Mutex
				poll := 0
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					switch r.URL.Path {
					case "/api/v1/cluster":
						v := clusterView{Leader: "a"}
						for _, m := range tc.members {
							v.Nodes = append(v.Nodes, nodeView{ID: m})
						}
						json.NewEncoder(w).Encode(v)
					case "/api/v1/self-check":
						mu.Lock()
						s := steps[min(poll, len(steps)-1)]
						poll++
						mu.Unlock()
						fmt.Fprintf(w, `{"ok":true,"index":%d,"applied_index":%d,"digest":%q}`, s.index, s.index, s.digest)
					default:
						http.NotFound(w, r)
					}
				}))
				t.Cleanup(srv.Close)
				c.nodes = append(c.nodes, &node{c: c, id: id, http: strings.TrimPrefix(srv.URL, "http://"),
					procs: []*proc{{done: make(chan struct{})}}})
			}
			sort.Slice(c.nodes, func(i, j int) bool { return c.nodes[i].id < c.nodes[j].id })
			c.checkSameState()
			got := strings.Join(rec.errs, "\n")
			if got != "" {
				t.Log(got)
			}
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("errors %q, want %q", got, tc.want)
			}
		})
	}
}

// explainDifference snapshots both nodes and names the tables, and the
// first records, in which their replicas differ: a digest alone says only
// that they do.
func (c *cluster) explainDifference(a, b *node) string {
	load := func(n *node) (*state.State, error) {
		if r, err := c.do(n, "POST", "/api/v1/cluster/snapshot", nil); err != nil || (r.status != 200 && r.status != 409) {
			return nil, fmt.Errorf("snapshot on %s: %v %v", n, err, r)
		}
		dirs, _ := filepath.Glob(filepath.Join(n.dir, "snapshots", "*", "state.bin"))
		sort.Strings(dirs) // names start with the term and index
		if len(dirs) == 0 {
			return nil, fmt.Errorf("no snapshot on %s", n)
		}
		f, err := os.Open(dirs[len(dirs)-1])
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return state.Decode(f)
	}
	sa, err := load(a)
	if err != nil {
		return err.Error()
	}
	sb, err := load(b)
	if err != nil {
		return err.Error()
	}
	var out []string
	if sa.Index != sb.Index {
		out = append(out, fmt.Sprintf("(snapshots at index %d and %d)", sa.Index, sb.Index))
	}
	va, vb := reflect.ValueOf(sa).Elem(), reflect.ValueOf(sb).Elem()
	for i := 0; i < va.NumField(); i++ {
		f := va.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		ja, _ := json.Marshal(va.Field(i).Interface())
		jb, _ := json.Marshal(vb.Field(i).Interface())
		if string(ja) == string(jb) {
			continue
		}
		line := fmt.Sprintf("%s differs", f.Name)
		var ma, mb map[string]json.RawMessage
		if json.Unmarshal(ja, &ma) == nil && json.Unmarshal(jb, &mb) == nil {
			shown := 0
			for k, x := range ma {
				if y, ok := mb[k]; !ok || string(x) != string(y) {
					line += fmt.Sprintf("\n    %s on %s: %s\n    %s on %s: %s", k, a, x, k, b, y)
					if shown++; shown == 3 {
						break
					}
				}
			}
			for k, y := range mb {
				if _, ok := ma[k]; !ok && shown < 3 {
					line += fmt.Sprintf("\n    %s only on %s: %s", k, b, y)
					shown++
				}
			}
		} else if len(ja) < 2000 && len(jb) < 2000 {
			line += fmt.Sprintf(": %s on %s, %s on %s", ja, a, jb, b)
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n  ")
}
