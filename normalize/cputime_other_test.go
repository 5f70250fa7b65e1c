//go:build !unix

package normalize

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
