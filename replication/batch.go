package replication

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"lintel/consensus/command"
)

// PathApplyBatch carries the writes waiting on this node to the leader in
// one internal call: under load a follower's writes share one exchange
// rather than pay for one each, as etcd's followers hand their proposals to
// the leader in its Raft messages. A write that finds the calls idle goes
// at once: batching never makes a single write wait.
const PathApplyBatch = "/internal/v1/apply-batch"

const (
	batchMax      = 64              // writes per call
	batchBytes    = command.MaxSize // encoded bytes per call; one larger write goes alone
	batchInFlight = 2               // calls to the leader at once, per node
	batchBodyMax  = batchBytes + command.MaxSize + batchMax*binary.MaxVarintLen64
)

// forwarded is one write waiting for a call.
type forwarded struct {
	b    []byte
	done chan forwardedAnswer // buffered: the sender never waits for the writer
}

type forwardedAnswer struct {
	a   applyAnswer
	err error
}

// batcher queues a node's forwarded writes; at most batchInFlight senders
// drain it, started when writes wait and ended when none do.
type batcher struct {
	mu      sync.Mutex
	queue   []*forwarded
	sending int
	single  atomic.Pointer[string] // a leader that answered 404: an older build, one call per write
}

type batchAnswer struct {
	Answers []applyAnswer `json:"answers"`
}

// forward sends one write through the queue and waits for its answer. A
// write its caller gave up on before any call took it was never sent.
func (f *Forwarder) forward(ctx context.Context, b []byte, out *applyAnswer) error {
	p := &forwarded{b: b, done: make(chan forwardedAnswer, 1)}
	q := &f.batch
	q.mu.Lock()
	q.queue = append(q.queue, p)
	if q.sending < batchInFlight {
		q.sending++
		go f.sendBatches()
	}
	q.mu.Unlock()
	select {
	case r := <-p.done:
		*out = r.a
		return r.err
	case <-ctx.Done():
		q.mu.Lock()
		i := slices.Index(q.queue, p)
		if i >= 0 {
			q.queue = slices.Delete(q.queue, i, i+1)
		}
		q.mu.Unlock()
		if i >= 0 {
			return errRetry
		}
		return errMaybe
	}
}

// sendBatches sends what waits, a call at a time, until nothing does.
func (f *Forwarder) sendBatches() {
	q := &f.batch
	for {
		q.mu.Lock()
		n, size := 0, 0
		for n < len(q.queue) && n < batchMax && (n == 0 || size+len(q.queue[n].b) <= batchBytes) {
			size += len(q.queue[n].b)
			n++
		}
		if n == 0 {
			q.sending--
			q.mu.Unlock()
			return
		}
		batch := slices.Clone(q.queue[:n])
		q.queue = slices.Delete(q.queue, 0, n)
		q.mu.Unlock()
		f.sendBatch(batch)
	}
}

// sendBatch makes one call for the batch and hands each write its answer.
func (f *Forwarder) sendBatch(batch []*forwarded) {
	all := func(err error) {
		for _, p := range batch {
			p.done <- forwardedAnswer{err: err}
		}
	}
	leaderID, _ := f.Local.Leader()
	if p := f.batch.single.Load(); p != nil && *p == leaderID {
		f.sendSingly(batch)
		return
	}
	var body []byte
	for _, p := range batch {
		body = binary.AppendUvarint(body, uint64(len(p.b)))
		body = append(body, p.b...)
	}
	var out batchAnswer
	status, err := f.post(context.Background(), leaderID, PathApplyBatch, body, &out)
	switch {
	case err != nil:
		all(err)
	case status == http.StatusNotFound:
		f.batch.single.Store(&leaderID)
		f.sendSingly(batch)
	case len(out.Answers) != len(batch):
		all(errMaybe)
	default:
		for i, p := range batch {
			a := out.Answers[i]
			p.done <- forwardedAnswer{a: a, err: itemErr(leaderID, a)}
		}
	}
}

// sendSingly sends each write on its own call, for a leader that cannot
// take a batch.
func (f *Forwarder) sendSingly(batch []*forwarded) {
	var wg sync.WaitGroup
	for _, p := range batch {
		wg.Go(func() {
			var a applyAnswer
			err := f.call(context.Background(), PathApply, p.b, &a)
			p.done <- forwardedAnswer{a: a, err: err}
		})
	}
	wg.Wait()
}

// itemErr says what one write's answer in a batch means for its sender.
func itemErr(leaderID string, a applyAnswer) error {
	switch {
	case a.Status == http.StatusOK:
		return nil
	case a.Status == http.StatusServiceUnavailable && a.Error == "not_leader":
		return errRetry
	case a.Status == http.StatusServiceUnavailable:
		return errMaybe
	}
	return fmt.Errorf("leader %s refused the forwarded call: %s", leaderID, a.Error)
}

// splitBatch reads the writes of a batch body: each a uvarint length, then
// that many bytes.
func splitBatch(body []byte) ([][]byte, error) {
	var items [][]byte
	for len(body) > 0 {
		n, k := binary.Uvarint(body)
		if k <= 0 || n > uint64(len(body)-k) || n > command.MaxSize {
			return nil, errors.New("malformed batch: a length runs past the body")
		}
		if len(items) == batchMax {
			return nil, fmt.Errorf("a batch holds at most %d writes", batchMax)
		}
		items = append(items, body[k:k+int(n)])
		body = body[k+int(n):]
	}
	if len(items) == 0 {
		return nil, errors.New("empty batch")
	}
	return items, nil
}

// serveBatch applies each write of a batch as /internal/v1/apply would,
// all at once (Raft groups them into its own batches), and answers them in
// order.
func (f *Forwarder) serveBatch(w http.ResponseWriter, r *http.Request) {
	body, ok := f.verify(w, r, batchBodyMax)
	if !ok {
		return
	}
	items, err := splitBatch(body)
	if err != nil {
		answer(w, http.StatusBadRequest, applyAnswer{Error: err.Error()})
		return
	}
	if !f.Local.IsLeader() {
		answer(w, http.StatusServiceUnavailable, applyAnswer{Error: "not_leader"})
		return
	}
	out := batchAnswer{Answers: make([]applyAnswer, len(items))}
	var wg sync.WaitGroup
	for i, b := range items {
		wg.Go(func() { out.Answers[i] = f.applyOne(r.Context(), b) })
	}
	wg.Wait()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// post sends a signed internal call to node id and decodes its JSON answer
// into out when the call succeeded. A failure after sending is errMaybe.
func (f *Forwarder) post(ctx context.Context, id, path string, body []byte, out any) (int, error) {
	if id == "" || id == f.NodeID {
		return 0, errRetry
	}
	m, ok := f.Members.Member(id)
	if !ok || m.HTTP == "" {
		return 0, errRetry
	}
	secret := f.Secret()
	if len(secret) == 0 {
		return 0, errRetry // this node has not applied the cluster's init yet
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+m.HTTP+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	sign(req, secret, f.NodeID, path, body)
	resp, err := f.Client.Do(req)
	if err != nil {
		return 0, errMaybe // sent, perhaps received: only the request id can tell
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		if err := json.NewDecoder(io.LimitReader(resp.Body, batchBodyMax)).Decode(out); err != nil {
			return resp.StatusCode, errMaybe
		}
		return resp.StatusCode, nil
	case http.StatusNotFound:
		return resp.StatusCode, nil
	}
	var a applyAnswer
	json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&a)
	if resp.StatusCode == http.StatusServiceUnavailable {
		if a.Error == "not_leader" {
			return resp.StatusCode, errRetry
		}
		return resp.StatusCode, errMaybe
	}
	return resp.StatusCode, fmt.Errorf("leader %s refused the forwarded call: %s", id, a.Error)
}
