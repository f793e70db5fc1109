package checker

// SetStreamLimits lowers the index batch, the temporary index's run and
// the tree cache for a test, so that little data reaches every state; it
// returns a function that restores them.
func SetStreamLimits(batch, run, treeIDs int) func() {
	b, r, t := indexBatch, indexRun, treeCacheIDs
	indexBatch, indexRun, treeCacheIDs = batch, run, treeIDs
	return func() { indexBatch, indexRun, treeCacheIDs = b, r, t }
}
