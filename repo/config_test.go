package repo

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// TestConfigCheckSeesAChangedByteAnywhere: a byte changed in any field of
// a config with a check, the sealed secrets included, makes it fail to
// parse; a config without a check (older repositories) still parses.
func TestConfigCheckSeesAChangedByteAnywhere(t *testing.T) {
	c := Config{Format: "courtbak", Version: FormatVersion, ID: "dd73159f28e979746db4fd2265b58ee49858443979b37d14b575eb7e48992dd2",
		Created: time.Date(2026, 11, 27, 12, 50, 3, 595382324, time.UTC), Secrets: bytes.Repeat([]byte{7}, 80)}
	c.Check = c.checkSum()
	good, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseConfig(good); err != nil {
		t.Fatalf("intact config: %v", err)
	}
	for name, edit := range map[string]func(*Config){
		"secrets": func(c *Config) { c.Secrets[40] ^= 1 },
		"created": func(c *Config) { c.Created = c.Created.Add(time.Second) },
		"id":      func(c *Config) { c.ID = "ee" + c.ID[2:] },
		"check":   func(c *Config) { c.Check = "00" + c.Check[2:] },
	} {
		d := c
		d.Secrets = bytes.Clone(c.Secrets)
		edit(&d)
		b, _ := json.Marshal(d)
		if _, err := ParseConfig(b); !errors.Is(err, ErrDamaged) {
			t.Errorf("changed %s: %v, want ErrDamaged", name, err)
		}
	}
	old := c
	old.Check = ""
	old.Secrets[40] ^= 1
	b, _ := json.Marshal(old)
	if _, err := ParseConfig(b); err != nil {
		t.Errorf("a config without a check: %v", err)
	}
}
