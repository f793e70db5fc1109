// Package blob defines the identifiers shared by every layer of a courtbak
// repository: 32-byte BLAKE3 ids and blob types.
package blob

import (
	"encoding/hex"
	"fmt"
)

// ID is a 32-byte BLAKE3-256 value: a plain hash for stored objects, a keyed
// hash for blobs.
type ID [32]byte

// String returns the lowercase hex form.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits, as shown in tables.
func (id ID) Short() string { return id.String()[:8] }

// IsZero reports whether id is unset.
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses 64 hex digits.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("invalid id %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("invalid id %q: %w", s, err)
	}
	return id, nil
}

// MarshalText encodes an ID as hex in JSON.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes a hex ID.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// Type says what a blob holds. Data and tree blobs travel in separate packs.
type Type uint8

// Blob types, as stored in pack headers and index files.
const (
	Data Type = 0
	Tree Type = 1
)

func (t Type) String() string {
	switch t {
	case Data:
		return "data"
	case Tree:
		return "tree"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}
