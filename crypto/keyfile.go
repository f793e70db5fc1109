package crypto

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/argon2"
)

// ErrWrongPassword means a password did not open a key file.
var ErrWrongPassword = errors.New("wrong password")

// KDFParams are argon2id parameters. They are stored in each key file, so
// they can be raised for new keys without breaking old ones.
type KDFParams struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// DefaultKDF is RFC 9106's recommendation for memory-constrained use
// (64 MiB, 3 passes, 4 lanes): a fraction of a second per open, and every
// password guess costs an attacker as much. City agents open the repository
// on every cron run next to a backup pipeline of similar size, so a larger
// default would set their peak memory; operators raise it per key with
// --kdf-memory and --kdf-time.
var DefaultKDF = KDFParams{Time: 3, MemoryKiB: 64 * 1024, Threads: 4}

// Validate refuses parameters too weak to protect a password or too big to be sane,
// so that a forged key file cannot make courtbak allocate without bound.
func (p KDFParams) Validate() error {
	if p.Time < 1 || p.Time > 100 || p.MemoryKiB < 8*1024 || p.MemoryKiB > 4*1024*1024 || p.Threads < 1 || p.Threads > 64 {
		return fmt.Errorf("argon2id parameters out of range (time %d, memory %d KiB, threads %d)", p.Time, p.MemoryKiB, p.Threads)
	}
	return nil
}

// KeyFile is a password-wrapped copy of a repository's master key. A
// repository may hold several, one per password.
type KeyFile struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	Host    string    `json:"host,omitempty"`
	User    string    `json:"user,omitempty"`
	KDF     string    `json:"kdf"`
	Params  KDFParams `json:"kdf_params"`
	Salt    []byte    `json:"salt"`
	Check   []byte    `json:"check"`
	Wrapped []byte    `json:"wrapped_master_key"`
}

const keyFileVersion = 1

var keyFileAD = []byte("courtbak key file v1")

// NewKeyFile wraps master under password.
func NewKeyFile(master *Key, password []byte, p KDFParams, host, user string, now time.Time) (*KeyFile, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("generate salt: %w", err)
	}
	kek, check := derive(password, salt, p)
	return &KeyFile{
		Version: keyFileVersion,
		Created: now.UTC(),
		Host:    host,
		User:    user,
		KDF:     "argon2id",
		Params:  p,
		Salt:    salt,
		Check:   check,
		Wrapped: kek.Seal(nil, master.Bytes(), keyFileAD),
	}, nil
}

// derive stretches the password to 64 bytes: a key-encryption key and a
// check value that tells a wrong password from a damaged key file.
func derive(password, salt []byte, p KDFParams) (*Key, []byte) {
	out := argon2.IDKey(password, salt, p.Time, p.MemoryKiB, p.Threads, 2*KeySize)
	kek, _ := KeyFromBytes(out[:KeySize])
	return kek, out[KeySize:]
}

// Open unwraps the master key. A wrong password gives ErrWrongPassword.
func (kf *KeyFile) Open(password []byte) (*Key, error) {
	if kf.Version != keyFileVersion {
		return nil, fmt.Errorf("key file version %d is not supported by this courtbak", kf.Version)
	}
	if kf.KDF != "argon2id" {
		return nil, fmt.Errorf("key file uses unknown KDF %q", kf.KDF)
	}
	if err := kf.Params.Validate(); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	kek, check := derive(password, kf.Salt, kf.Params)
	if subtle.ConstantTimeCompare(check, kf.Check) != 1 {
		return nil, ErrWrongPassword
	}
	raw, err := kek.Open(nil, kf.Wrapped, keyFileAD)
	if err != nil {
		return nil, fmt.Errorf("key file is damaged: %w", err)
	}
	return KeyFromBytes(raw)
}

// Marshal encodes the key file as JSON.
func (kf *KeyFile) Marshal() ([]byte, error) {
	return json.MarshalIndent(kf, "", "  ")
}

// ParseKeyFile decodes a key file and checks its shape: everything that
// can be checked without the password (keyless verification relies on
// it), so that a key file no password could ever open is found before it
// is needed.
func ParseKeyFile(b []byte) (*KeyFile, error) {
	var kf KeyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, fmt.Errorf("parse key file: %w", err)
	}
	switch {
	case kf.Version != keyFileVersion:
		return nil, fmt.Errorf("key file version %d is not supported by this courtbak", kf.Version)
	case kf.KDF != "argon2id":
		return nil, fmt.Errorf("key file uses unknown KDF %q", kf.KDF)
	case len(kf.Salt) < 16 || len(kf.Check) != KeySize || len(kf.Wrapped) != Overhead+KeySize:
		return nil, fmt.Errorf("key file has a %d-byte salt, a %d-byte check and a %d-byte wrapped key, want at least 16, %d and %d",
			len(kf.Salt), len(kf.Check), len(kf.Wrapped), KeySize, Overhead+KeySize)
	}
	if err := kf.Params.Validate(); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	return &kf, nil
}
