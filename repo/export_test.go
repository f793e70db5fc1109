package repo

// SetTableReadGroup sets how many index files are read per table built,
// and returns a function that restores it.
func SetTableReadGroup(n int) func() {
	old := readGroup
	readGroup = n
	return func() { readGroup = old }
}
