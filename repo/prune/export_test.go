package prune

// SetSortRunBytes makes every sort of the following prunes spill a run
// each n bytes, and returns a function that undoes it.
func SetSortRunBytes(n int) (undo func()) {
	old := defaultRunBytes
	defaultRunBytes = n
	return func() { defaultRunBytes = old }
}
