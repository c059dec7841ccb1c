package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"time"
)

type metrics struct {
	reg          *prometheus.Registry
	applySeconds prometheus.Histogram
	forwarded    prometheus.Counter
}

func newMetrics(n *Node) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lintel_raft_apply_seconds",
			Help:    "Time from submitting a command on the leader to its commit and apply.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lintel_forwarded_writes_total",
			Help: "Writes this node forwarded to the leader.",
		}),
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.applySeconds, m.forwarded,
		gauge("lintel_raft_term", "Current Raft term.", func() float64 { return float64(n.raft.Term()) }),
		gauge("lintel_raft_commit_index", "Raft commit index known to this node.", func() float64 { return float64(n.raft.CommitIndex()) }),
		gauge("lintel_raft_applied_index", "Raft index the local state reflects.", func() float64 { return float64(n.raft.AppliedIndex()) }),
		gauge("lintel_raft_last_index", "Last index in this node's Raft log.", func() float64 { return float64(n.raft.LastIndex()) }),
		gauge("lintel_apply_halted", "1 when this node stopped applying the log (an undecodable command, or the applied mark could not be written).", func() float64 {
			if n.raft.Halted() != nil {
				return 1
			}
			return 0
		}),
		gauge("lintel_replica_stale_seconds", "Seconds since this node's replica last held everything the leader had committed (0 while current).", func() float64 {
			if ok, since := n.current(); !ok {
				return time.Since(since).Seconds()
			}
			return 0
		}),
		gauge("lintel_console_live_connections", "Browsers connected to this node's console for live updates (/ws).", func() float64 { return float64(n.hub.Connections()) }),
		gauge("lintel_console_live_messages", "Live updates this node's console has sent to browsers.", func() float64 { return float64(n.hub.Sent()) }),
		gauge("lintel_events_unwritten", "Access events held in memory because the event log cannot be written.", func() float64 {
			if n.ctrl == nil {
				return 0
			}
			k, _ := n.ctrl.Unwritten()
			return float64(k)
		}),
		&labelled{
			desc: prometheus.NewDesc("lintel_raft_state", "1 for this node's current Raft state.", []string{"state"}, nil),
			values: func() map[string]float64 {
				out := map[string]float64{"leader": 0, "follower": 0, "candidate": 0, "shutdown": 0}
				out[n.raft.State()] = 1
				return out
			},
		},
		&labelled{
			desc: prometheus.NewDesc("lintel_gossip_members", "Nodes gossip knows, by state.", []string{"state"}, nil),
			values: func() map[string]float64 {
				out := map[string]float64{"alive": 0, "suspect": 0, "dead": 0, "left": 0}
				for _, mb := range n.members.Members() {
					out[mb.State]++
				}
				return out
			},
		},
	)
	return m
}

// labelled is a gauge whose label values are read at scrape time.
type labelled struct {
	desc   *prometheus.Desc
	values func() map[string]float64
}

func (l *labelled) Describe(ch chan<- *prometheus.Desc) { ch <- l.desc }
func (l *labelled) Collect(ch chan<- prometheus.Metric) {
	for k, v := range l.values() {
		ch <- prometheus.MustNewConstMetric(l.desc, prometheus.GaugeValue, v, k)
	}
}
