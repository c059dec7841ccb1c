// Package clustertests starts real `lintel serve` processes on loopback and
// checks the cluster's promises against them: forming, forwarding writes,
// surviving a killed leader, clean stops, idempotency, no-quorum answers,
// node removal and catching up. The benchmarks measure the figures of SPEC
// section 9 that need a real cluster.
//
// The binary is built once per run from the module root; set LINTEL_BIN to
// use one that is already built. LINTEL_SNAPSHOT_WAIT=1 makes
// TestSnapshotCatchUp wait (minutes) for the leader's first snapshot, so the
// far-behind follower installs it instead of replaying the log.
package clustertests
