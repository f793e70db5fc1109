package prune

// SetSortRunBytes makes every sort of the following prunes spill a run
// each n bytes, and returns a function that undoes it.
func SetSortRunBytes(n int) (undo func()) {
	old := defaultRunBytes
	defaultRunBytes = n
	return func() { defaultRunBytes = old }
}

// SetMinConsolidate sets the number of index files in effect above which
// a mark with nothing unused consolidates them, and returns a function
// that undoes it.
func SetMinConsolidate(n int) (undo func()) {
	old := minConsolidate
	minConsolidate = n
	return func() { minConsolidate = old }
}
