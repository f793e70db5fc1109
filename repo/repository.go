package repo

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/courtbak/courtbak/chunking"
	"github.com/courtbak/courtbak/crypto"
	"github.com/courtbak/courtbak/remote"
	"github.com/courtbak/courtbak/repo/blob"
	"github.com/courtbak/courtbak/repo/index"
	"github.com/courtbak/courtbak/repo/snapshot"
)

// FormatVersion is the repository format this courtbak writes and reads.
const FormatVersion = 1

// ErrNoRepository means there is no courtbak repository at the location.
var ErrNoRepository = errors.New("repository does not exist")

// ErrNotEmpty means init found other data where the repository would go.
var ErrNotEmpty = errors.New("give an empty or new directory or prefix for the repository")

// ErrExists means init found a repository already.
var ErrExists = errors.New("a repository already exists there")

// ErrWrongPassword means no key file of the repository opens with the password.
var ErrWrongPassword = crypto.ErrWrongPassword

// ErrDamaged means a stored object does not match its name or fails
// authentication.
var ErrDamaged = errors.New("object is damaged")

// Config is the plaintext part of the config object. Everything secret
// (chunker polynomial, blob id key) is sealed in Secrets with the master key.
type Config struct {
	Format  string    `json:"format"`
	Version int       `json:"version"`
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Secrets []byte    `json:"secrets"`
	// Check is the BLAKE3-256 (hex) of the config's JSON encoding with
	// Check empty: a check anyone can make without the password, so that
	// a flipped byte anywhere in the config, its sealed secrets included,
	// is seen by keyless verification and by reads that fail over to a
	// replica. Configs written before it existed have none (see
	// docs/design.md, "The config").
	Check string `json:"check,omitempty"`
}

// checkSum computes Config.Check.
func (c Config) checkSum() string {
	c.Check = ""
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // a struct of strings, ints, bytes and a time
	}
	return blob.ID(crypto.Hash(b)).String()
}

type secrets struct {
	Chunker   chunking.Params `json:"chunker"`
	BlobIDKey []byte          `json:"blob_id_key"`
}

var configAD = []byte("courtbak config v1")

// ParseConfig decodes the config object and refuses unknown formats. It
// needs no password: replica operators use it to recognise a repository.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("config is not a courtbak config (%v): %w", err, ErrDamaged)
	}
	if c.Format != "courtbak" {
		return c, fmt.Errorf("config format %q is not courtbak: %w", c.Format, ErrDamaged)
	}
	if c.Version != FormatVersion {
		return c, fmt.Errorf("repository format version %d is not supported by this courtbak (it reads version %d); upgrade courtbak", c.Version, FormatVersion)
	}
	// The id names local cache directories: it must be what init wrote.
	if _, err := blob.ParseID(c.ID); err != nil {
		return c, fmt.Errorf("config has an invalid repository id: %w", ErrDamaged)
	}
	if c.Check != "" && c.Check != c.checkSum() {
		return c, fmt.Errorf("config does not match its check (a byte of it was changed): %w", ErrDamaged)
	}
	return c, nil
}

// Options tune a repository handle; zero values select defaults.
type Options struct {
	// PackSize is the target size of pack files.
	PackSize int
	// Now is the clock; tests inject one.
	Now func() time.Time
	// CacheDir holds local state that speeds up or protects later runs
	// (the journal of uploaded packs); empty disables it.
	CacheDir string
	// Warn receives one-line notices (failover, skipped damage) for stderr.
	Warn func(string)
	// IndexFallback, when not nil, is where LoadIndex reads an index file
	// that is damaged in the repository: its replicas. (Read commands open
	// the repository over a failover backend instead, which does this for
	// every object.)
	IndexFallback remote.Backend
	// KeySource, when not nil, is where Open reads the config and the key
	// files instead of the repository's own storage: verify --repair opens
	// a repository whose config or keys are damaged or lost through its
	// replicas, and checks and repairs the repository itself.
	KeySource remote.Backend
	// WalkLimits bound every walk through a snapshot's tree (ls, diff,
	// restore); zero fields take snapshot.DefaultLimits.
	WalkLimits snapshot.Limits
}

// DefaultPackSize suits object storage: few requests per GB, small enough to
// retry an upload cheaply.
const DefaultPackSize = 16 << 20

// Repository is an open repository.
type Repository struct {
	be    remote.Backend
	cfg   Config
	key   *crypto.Key
	idKey *crypto.IDKey
	chunk chunking.Params
	keyID string
	opts  Options
	index *index.Index
	zenc  *zstd.Encoder
	zdec  *zstd.Decoder

	// What SecureSnapshot needs to notice a prune: the index files this
	// process loaded or wrote (true: relied on), and when (wall clock) it
	// loaded the index.
	indexMu       sync.Mutex
	indexSeen     seenIndex
	indexLoadedAt time.Time
	// indexDamaged names the index files LoadIndex left out as damaged.
	indexDamaged []string
}

func (o *Options) defaults() {
	if o.PackSize <= 0 {
		o.PackSize = DefaultPackSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Warn == nil {
		o.Warn = func(string) {}
	}
}

func newRepository(be remote.Backend, opts Options) *Repository {
	opts.defaults()
	zenc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(1<<20), zstd.WithLowerEncoderMem(true))
	if err != nil {
		panic(err) // only fails on invalid options
	}
	zdec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		panic(err)
	}
	return &Repository{be: be, opts: opts, index: index.New(), zenc: zenc, zdec: zdec, indexLoadedAt: opts.Now().Round(0)}
}

// Exists reports whether a repository config is stored at be.
func Exists(ctx context.Context, be remote.Backend) (bool, error) {
	_, err := be.Stat(ctx, configHandle)
	if errors.Is(err, remote.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

var configHandle = remote.Handle{Type: remote.Config, Name: "config"}

// InitOptions choose the parameters of a new repository.
type InitOptions struct {
	KDF crypto.KDFParams
	// AverageChunkSize is the average chunk size in bytes (a power of two,
	// chunking.MinAverageSize–MaxAverageSize); 0 keeps the default.
	AverageChunkSize uint64
}

// foreignLister is a backend that can list what its location holds that
// is not part of a repository (remote.Local, remote.S3): init refuses such
// a location, so that a mistyped --repo never mixes a repository into
// other data.
type foreignLister interface {
	Foreign(ctx context.Context) ([]string, error)
}

// Init creates a repository with one key for password.
func Init(ctx context.Context, be remote.Backend, password []byte, io InitOptions, opts Options) (*Repository, error) {
	exists, err := Exists(ctx, be)
	if err != nil {
		return nil, fmt.Errorf("check for an existing repository: %w", err)
	}
	if exists {
		return nil, fmt.Errorf("%s: %w", be.Location(), ErrExists)
	}
	var foreign []string
	if fl, ok := remote.As[foreignLister](be); ok {
		if foreign, err = fl.Foreign(ctx); err != nil {
			return nil, err
		}
	}
	if len(foreign) > 0 {
		return nil, fmt.Errorf("%s is not empty and holds no repository (it has %s): %w", be.Location(), strings.Join(foreign, ", "), ErrNotEmpty)
	}
	r := newRepository(be, opts)
	if r.key, err = crypto.NewRandomKey(); err != nil {
		return nil, err
	}
	if r.chunk, err = chunking.NewParams(); err != nil {
		return nil, err
	}
	if io.AverageChunkSize != 0 {
		if r.chunk, err = r.chunk.WithAverage(io.AverageChunkSize); err != nil {
			return nil, err
		}
	}
	idKey := make([]byte, crypto.KeySize)
	repoID := make([]byte, 32)
	if _, err := rand.Read(idKey); err != nil {
		return nil, fmt.Errorf("generate blob id key: %w", err)
	}
	if _, err := rand.Read(repoID); err != nil {
		return nil, fmt.Errorf("generate repository id: %w", err)
	}
	if r.idKey, err = crypto.NewIDKey(idKey); err != nil {
		return nil, err
	}
	sec, err := json.Marshal(secrets{Chunker: r.chunk, BlobIDKey: idKey})
	if err != nil {
		return nil, err
	}
	r.cfg = Config{
		Format:  "courtbak",
		Version: FormatVersion,
		ID:      blob.ID(repoID).String(),
		Created: r.opts.Now().UTC(),
		Secrets: r.key.Seal(nil, sec, configAD),
	}
	r.cfg.Check = r.cfg.checkSum()
	// The key goes first: a config without a key would be a repository
	// nobody can open, whereas a stray key without a config is harmless.
	if _, err := r.AddKey(ctx, password, io.KDF); err != nil {
		return nil, err
	}
	cfgBytes, err := json.MarshalIndent(r.cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := be.Save(ctx, configHandle, cfgBytes); err != nil {
		return nil, fmt.Errorf("save config: %w", err)
	}
	return r, nil
}

// Open opens the repository at be with password.
func Open(ctx context.Context, be remote.Backend, password []byte, opts Options) (*Repository, error) {
	r := newRepository(be, opts)
	src := be
	if opts.KeySource != nil {
		src = opts.KeySource
	}
	cfgBytes, err := remote.ReadAll(ctx, src, configHandle)
	if errors.Is(err, remote.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", be.Location(), ErrNoRepository)
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if r.cfg, err = ParseConfig(cfgBytes); err != nil {
		return nil, err
	}
	if err := r.unlock(ctx, src, password); err != nil {
		return nil, err
	}
	return r, nil
}

// allCopiesLister lists objects at every copy of a repository
// (remote.Failover).
type allCopiesLister interface {
	ListAllCopies(ctx context.Context, t remote.Type, fn func(remote.ObjectInfo) error) error
}

// listKeysToOpen lists the key files Open may try: those of the first copy
// that answers, or, when it has none at all, those of every copy (a
// primary whose key files were lost opens through its replicas). A key
// file missing from a copy that has others may have been removed on
// purpose (key remove), so it is not taken from another copy.
func (r *Repository) listKeysToOpen(ctx context.Context, src remote.Backend) ([]KeyInfo, error) {
	keys, err := r.listKeys(ctx, src)
	if err != nil || len(keys) > 0 {
		return keys, err
	}
	all, ok := src.(allCopiesLister)
	if !ok {
		return nil, nil
	}
	var infos []remote.ObjectInfo
	if err := all.ListAllCopies(ctx, remote.Keys, func(fi remote.ObjectInfo) error {
		infos = append(infos, fi)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	keys = r.parseKeys(ctx, src, infos)
	if len(keys) > 0 {
		r.Warn("%s has no key files; using the key files of its replicas", r.be.Location())
	}
	return keys, nil
}

// openSecrets opens the config's sealed secrets with a candidate master key.
func (r *Repository) openSecrets(master *crypto.Key) error {
	sec, err := master.Open(nil, r.cfg.Secrets, configAD)
	if err != nil {
		return fmt.Errorf("config secrets: %w", err)
	}
	var s secrets
	if err := json.Unmarshal(sec, &s); err != nil {
		return fmt.Errorf("config secrets: %v: %w", err, ErrDamaged)
	}
	if err := s.Chunker.Validate(); err != nil {
		return fmt.Errorf("config: %v: %w", err, ErrDamaged)
	}
	idKey, err := crypto.NewIDKey(s.BlobIDKey)
	if err != nil {
		return fmt.Errorf("config: %v: %w", err, ErrDamaged)
	}
	r.key, r.chunk, r.idKey = master, s.Chunker, idKey
	return nil
}

// unlock tries every key file until one opens the config with password.
// A key whose password matches but whose master key does not open the
// config (left by an interrupted init) is skipped, not fatal.
func (r *Repository) unlock(ctx context.Context, src remote.Backend, password []byte) error {
	keys, err := r.listKeysToOpen(ctx, src)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return fmt.Errorf("%s has a config but no key files: %w", r.be.Location(), ErrDamaged)
	}
	var lastErr error = ErrWrongPassword
	for _, k := range keys {
		master, err := k.File.Open(password)
		if err == nil {
			if err = r.openSecrets(master); err == nil {
				r.keyID = k.ID
				return nil
			}
		}
		if !errors.Is(err, crypto.ErrWrongPassword) {
			lastErr = err
		}
	}
	return lastErr
}

// Backend returns the storage under the repository.
func (r *Repository) Backend() remote.Backend { return r.be }

// Config returns the plaintext config.
func (r *Repository) Config() Config { return r.cfg }

// WalkLimits are the limits of walks through this repository's trees
// (snapshot.LimitsOf finds them).
func (r *Repository) WalkLimits() snapshot.Limits { return r.opts.WalkLimits }

// ID returns the repository id.
func (r *Repository) ID() string { return r.cfg.ID }

// Chunking returns the repository's secret chunking parameters.
func (r *Repository) Chunking() chunking.Params { return r.chunk }

// Index returns the in-memory index (load it with LoadIndex first).
func (r *Repository) Index() *index.Index { return r.index }

// BlobID computes the keyed id of a plaintext blob.
func (r *Repository) BlobID(plaintext []byte) blob.ID { return r.idKey.Sum(plaintext) }

// Now returns the repository clock's time.
func (r *Repository) Now() time.Time { return r.opts.Now() }

// Warn emits a one-line notice.
func (r *Repository) Warn(format string, args ...any) { r.opts.Warn(fmt.Sprintf(format, args...)) }

// KeyInfo describes one key file.
type KeyInfo struct {
	ID      string
	Current bool
	File    *crypto.KeyFile
}

func (r *Repository) listKeys(ctx context.Context, src remote.Backend) ([]KeyInfo, error) {
	var infos []remote.ObjectInfo
	err := src.List(ctx, remote.Keys, func(fi remote.ObjectInfo) error {
		infos = append(infos, fi)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return r.parseKeys(ctx, src, infos), nil
}

// parseKeys reads and parses the listed key files from src, skipping (and
// naming) those that are damaged.
func (r *Repository) parseKeys(ctx context.Context, src remote.Backend, infos []remote.ObjectInfo) []KeyInfo {
	var keys []KeyInfo
	for _, fi := range infos {
		b, err := remote.ReadAll(ctx, src, fi.Handle)
		if err == nil {
			err = CheckName(fi.Handle, b)
		}
		var kf *crypto.KeyFile
		if err == nil {
			kf, err = crypto.ParseKeyFile(b)
		}
		if err != nil {
			r.Warn("skipping key %s: %v", fi.Name, err)
			continue
		}
		keys = append(keys, KeyInfo{ID: fi.Name, File: kf})
	}
	return keys
}

// KeyID is the key file this handle was opened with.
func (r *Repository) KeyID() string { return r.keyID }

// CheckConfig reports whether data is this repository's config, intact:
// it parses, carries the repository's id and its secrets open with the
// master key. verify uses it where a keyless parse cannot tell (configs
// without a check).
func (r *Repository) CheckConfig(data []byte) error {
	cfg, err := ParseConfig(data)
	if err != nil {
		return err
	}
	if cfg.ID != r.cfg.ID {
		return fmt.Errorf("config is of repository %s, not %s: %w", cfg.ID, r.cfg.ID, ErrDamaged)
	}
	if _, err := r.key.Open(nil, cfg.Secrets, configAD); err != nil {
		return fmt.Errorf("config secrets do not open with the master key: %w", ErrDamaged)
	}
	return nil
}

// Keys lists the key files, marking the one this handle was opened with.
func (r *Repository) Keys(ctx context.Context) ([]KeyInfo, error) {
	keys, err := r.listKeys(ctx, r.be)
	for i := range keys {
		keys[i].Current = keys[i].ID == r.keyID
	}
	return keys, err
}

// AddKey stores a new key file that opens the repository with password.
func (r *Repository) AddKey(ctx context.Context, password []byte, kdf crypto.KDFParams) (string, error) {
	if kdf == (crypto.KDFParams{}) {
		kdf = crypto.DefaultKDF
	}
	host, _ := os.Hostname()
	username := ""
	if u, err := user.Current(); err == nil {
		username = u.Username
	}
	kf, err := crypto.NewKeyFile(r.key, password, kdf, host, username, r.opts.Now())
	if err != nil {
		return "", err
	}
	b, err := kf.Marshal()
	if err != nil {
		return "", err
	}
	id, err := r.saveObject(ctx, remote.Keys, b)
	if err != nil {
		return "", fmt.Errorf("save key: %w", err)
	}
	if r.keyID == "" {
		r.keyID = id.String()
	}
	return id.String(), nil
}

// RemoveKey deletes a key file. The key this handle was opened with cannot
// be removed (so at least one key always remains).
func (r *Repository) RemoveKey(ctx context.Context, id string) error {
	keys, err := r.listKeys(ctx, r.be)
	if err != nil {
		return err
	}
	var match []string
	for _, k := range keys {
		if len(id) >= 4 && len(k.ID) >= len(id) && k.ID[:len(id)] == id {
			match = append(match, k.ID)
		}
	}
	switch {
	case len(match) == 0:
		return fmt.Errorf("no key with id %q (see 'courtbak key list')", id)
	case len(match) > 1:
		return fmt.Errorf("key id prefix %q is ambiguous", id)
	case match[0] == r.keyID:
		return fmt.Errorf("key %s is the one in use; open the repository with another password to remove it", match[0][:8])
	case len(keys) < 2:
		return fmt.Errorf("cannot remove the last key")
	}
	return r.be.Remove(ctx, remote.Handle{Type: remote.Keys, Name: match[0]})
}

// ChangePassword replaces the current key with one for a new password. The
// new key is stored before the old one is removed.
func (r *Repository) ChangePassword(ctx context.Context, password []byte, kdf crypto.KDFParams) (string, error) {
	old := r.keyID
	r.keyID = ""
	id, err := r.AddKey(ctx, password, kdf)
	if err != nil {
		r.keyID = old
		return "", err
	}
	r.keyID = id
	if err := r.be.Remove(ctx, remote.Handle{Type: remote.Keys, Name: old}); err != nil {
		return id, fmt.Errorf("new key %s stored, but removing the old key %s failed: %w", id[:8], old[:8], err)
	}
	return id, nil
}
