package node

import (
	"sort"
	"time"

	"lintel/consensus/state"
	"lintel/reader/ble"
)

// bleRetry is how often adapters that failed to open are tried again.
const bleRetry = 30 * time.Second

// bleLoop keeps the BLE transport serving exactly this node's BLE readers:
// at start, whenever the readers table changes, and every bleRetry (an
// adapter plugged in later is picked up). With no BLE reader no adapter is
// opened.
func (n *Node) bleLoop() {
	defer n.wg.Done()
	t := time.NewTicker(bleRetry)
	defer t.Stop()
	var lastErr string
	for {
		var rs []ble.Reader
		n.raft.Read(func(s *state.State) {
			for _, r := range s.Readers.All() {
				if r.NodeID == n.cfg.NodeID && r.Transport == state.TransportBLE {
					rs = append(rs, ble.Reader{ID: r.ID, Adapter: r.BLEAdapter})
				}
			}
		})
		sort.Slice(rs, func(i, j int) bool { return rs[i].ID < rs[j].ID })
		err := n.ble.SetReaders(rs)
		switch {
		case err != nil && err.Error() != lastErr:
			n.log.Error("BLE readers not served", "err", err)
			lastErr = err.Error()
		case err == nil && lastErr != "":
			n.log.Info("BLE readers served", "readers", len(rs))
			lastErr = ""
		}
		select {
		case <-n.stop:
			return
		case <-n.readersChanged:
		case <-t.C:
		}
	}
}
