//go:build !unix

package table

import "time"

func cpuTime() time.Duration { return 0 }
