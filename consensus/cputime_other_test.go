//go:build !unix

package consensus

import "time"

func processCPU() time.Duration { return 0 }
