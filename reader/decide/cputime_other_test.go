//go:build !unix

package decide

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
