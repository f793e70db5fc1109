package remote

import "syscall"

// syncWrites makes each write to an object's file durable as it returns.
const syncWrites = syscall.O_DSYNC
