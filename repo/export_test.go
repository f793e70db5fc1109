package repo

// SetTableRun sets how many index files are read at once and how many
// records make a table, and returns a function that restores them.
func SetTableRun(files, records int) func() {
	oldF, oldR := loadBatch, runRecords
	loadBatch, runRecords = files, records
	return func() { loadBatch, runRecords = oldF, oldR }
}
