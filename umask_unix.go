//go:build unix

package main

import "syscall"

// privateFiles makes every file the node creates readable by its user only
// (raft writes its snapshots 0644 otherwise): the data dir holds password
// hashes, the cluster CA's key and the node's own key.
func privateFiles() { syscall.Umask(0o077) }
