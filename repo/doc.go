// Package repo is the encrypted store of a courtbak repository: its config
// and keys, sealed files (index, snapshots), packs of blobs, reading and
// writing blobs, the local cache, the backup journal and the saver. The
// layout and byte formats are specified in docs/design.md.
//
// The packages under repo/ form layers; an import only ever points down:
//
//	cmd/courtbak                     flags and output only
//	archiver restorer checker prune  the operations (replicate, report
//	replicate retention report       and retention stand beside them)
//	repo                             the encrypted store (this package)
//	snapshot                         snapshots and trees, over TreeLoader
//	index  pack  buffers             the index, pack files, buffer pools
//	blob                             blob ids and types
//
// repo/snapshot knows nothing of storage: it reads trees through the small
// TreeLoader interface, which *Repository implements. repo/retention
// decides over snapshots alone. Below repo, nothing imports repo or
// anything above it; crypto, chunking and remote are the top-level
// libraries every layer may use.
//
// Tests make repositories with repo/repotest (fast keys; in memory on
// remote/mem, or in a temporary directory).
package repo
