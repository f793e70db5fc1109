// Package crashpoint kills the process at named points, for tests only:
// the robustness tests run the real binary and make it die (as kill -9
// would) exactly between two writes of a backup, a replication, a
// forget, or a prune's mark or sweep, so that every such point is
// covered in every run instead of by chance.
//
// It does nothing unless both test-only environment variables are set
// (docs/testing.md):
//
//	COURTBAK_TEST_HOOKS=crash
//	COURTBAK_TEST_CRASH_AT=POINT      kill at the first hit of POINT
//	COURTBAK_TEST_CRASH_AT=POINT#N    kill at the N-th hit
//
// Production runs never set COURTBAK_TEST_HOOKS; a point costs one
// atomic load when it is not armed.
package crashpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The named points. Each is hit right after the write it names is
// complete (or, for deletions, the deletion).
const (
	BackupPack         = "backup.pack"          // a pack uploaded
	BackupIndex        = "backup.index"         // an index file written
	BackupSnapshot     = "backup.snapshot"      // the snapshot stored, before its log record
	LogRecord          = "log.record"           // a snapshot log record written
	ForgetRemove       = "forget.remove"        // one forgotten snapshot deleted
	ReplicateObject    = "replicate.object"     // one object copied to a replica
	PruneMarkRepack    = "prune.mark.repack"    // partly used packs repacked
	PruneMarkIndex     = "prune.mark.index"     // one file of the new index written
	PruneMarkPlan      = "prune.mark.plan"      // the plan saved, before the superseding file
	PruneMarkSupersede = "prune.mark.supersede" // the superseding index file written
	PruneSweepPack     = "prune.sweep.pack"     // one pack deleted
	PruneSweepIndex    = "prune.sweep.index"    // one superseded index file deleted
)

// All lists every point, for tests that cover them all.
var All = []string{BackupPack, BackupIndex, BackupSnapshot, LogRecord, ForgetRemove, ReplicateObject,
	PruneMarkRepack, PruneMarkIndex, PruneMarkPlan, PruneMarkSupersede, PruneSweepPack, PruneSweepIndex}

var (
	once   sync.Once
	point  string
	target int64
	hits   atomic.Int64
	armed  atomic.Bool
)

func setup() {
	if os.Getenv("COURTBAK_TEST_HOOKS") != "crash" {
		return
	}
	spec := os.Getenv("COURTBAK_TEST_CRASH_AT")
	if spec == "" {
		return
	}
	point, target = spec, 1
	if i := strings.LastIndexByte(spec, '#'); i >= 0 {
		n, err := strconv.ParseInt(spec[i+1:], 10, 64)
		if err != nil || n < 1 {
			return
		}
		point, target = spec[:i], n
	}
	armed.Store(true)
}

// Hit kills the process if name is the armed point and this is the hit
// asked for.
func Hit(name string) {
	once.Do(setup)
	if !armed.Load() || name != point || hits.Add(1) != target {
		return
	}
	fmt.Fprintf(os.Stderr, "courtbak: test crash point %s#%d reached: killing the process\n", name, target)
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Kill() // SIGKILL on Unix: nothing runs after it
	}
	time.Sleep(time.Second) // the signal may land after Kill returns
	os.Exit(137)
}
