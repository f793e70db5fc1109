package report

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"
)

// sample is a report with values that try to break every format.
func sample() *Report {
	r := &Report{
		Schema: Schema, SchemaVersion: SchemaVersion,
		Repository: Repository{ID: strings.Repeat("ab", 32), Location: "s3:https://center.example/bucket|x"},
		Courtbak:   "1.0", Host: "court<b>host</b>",
		Started: time.Date(2025, 3, 1, 2, 0, 0, 0, time.UTC), Finished: time.Date(2025, 3, 1, 2, 5, 0, 0, time.UTC),
		Scope:             Scope{Structure: true, ReadData: "all", Description: "structure; all data"},
		Copies:            []Copy{{Role: "primary", Location: "/srv/repo", Status: StatusIntact}, {Role: "replica", Location: "/mnt/dr", Status: StatusProblems, Missing: []string{"data/" + strings.Repeat("0", 64)}}},
		Problems:          []Problem{{Copy: "/mnt/dr", Kind: "object_missing", Object: "data/" + strings.Repeat("0", 64), Message: "missing <script>alert(1)</script>", Action: "courtbak replicate --to /mnt/dr"}},
		ManifestAvailable: true,
		Snapshots: []Snapshot{{ID: strings.Repeat("cd", 32), Host: "city|court", Paths: []string{"/rec"}, Files: 2, Bytes: 3, Status: SnapshotIntact, ManifestIncluded: true,
			Manifest: []File{
				{Path: "/rec/a|b `c` <script>x</script>.mp4", Size: 1, BLAKE3: strings.Repeat("1", 64)},
				{Path: "/rec/line\nbreak ``` **bold**", Size: 2, BLAKE3: strings.Repeat("2", 64)},
			}}},
	}
	r.SetVerdict()
	return r
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealedReportsVerifyAndRejectEdits(t *testing.T) {
	key, other := newKey(t), newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	for _, f := range Formats {
		t.Run(string(f), func(t *testing.T) {
			data, err := Encode(f, sample(), key)
			if err != nil {
				t.Fatal(err)
			}
			v, err := Verify(data, f, pub)
			if err != nil {
				t.Fatalf("untouched report: %v", err)
			}
			if v.Fingerprint != Fingerprint(pub) || v.Covers <= 0 {
				t.Errorf("verification %+v", v)
			}
			if _, err := Verify(data, "", pub); err != nil {
				t.Errorf("format found by trying each: %v", err)
			}
			if _, err := Verify(data, f, other.Public().(ed25519.PublicKey)); !errors.Is(err, ErrOtherKey) {
				t.Errorf("other key: %v", err)
			}
			// One changed character anywhere: in the body, in the seal.
			for _, at := range []int{len(data) / 3, len(data) - 40} {
				edited := bytes.Clone(data)
				edited[at] ^= 0x01
				if _, err := Verify(edited, f, pub); !errors.Is(err, ErrChanged) && !errors.Is(err, ErrNoSeal) {
					t.Errorf("edit at %d of %d: %v", at, len(data), err)
				}
			}
			if _, err := Verify(append(bytes.Clone(data), "extra\n"...), f, pub); !errors.Is(err, ErrChanged) {
				t.Errorf("text after the seal: %v", err)
			}
			// An edit with the hash recomputed fails on the signature.
			body, _ := Render(f, sample())
			forged := SealBody(f, bytes.Replace(body, []byte("city"), []byte("town"), 1), nil)
			s, _, err := parseSeal(f, forged)
			if err != nil {
				t.Fatal(err)
			}
			orig, _, _ := parseSeal(f, data)
			s.Signature, s.PublicKey = orig.Signature, orig.PublicKey
			forged = append(forged[:s.Covers], renderSeal(f, s)...)
			if _, err := Verify(forged, f, pub); !errors.Is(err, ErrChanged) {
				t.Errorf("recomputed hash: %v", err)
			}
			unsigned, _ := Encode(f, sample(), nil)
			if _, err := Verify(unsigned, f, pub); !errors.Is(err, ErrUnsigned) {
				t.Errorf("unsigned: %v", err)
			}
		})
	}
}

func TestRenderingsEscapeEverything(t *testing.T) {
	r := sample()
	js, _ := Encode(JSON, r, newKey(t))
	var back map[string]any
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatalf("sealed JSON does not parse: %v", err)
	}
	if back["integrity"] == nil || back["schema"] != Schema {
		t.Errorf("JSON lacks integrity or schema")
	}
	html, _ := Encode(HTML, r, nil)
	if bytes.Contains(html, []byte("<script>")) || bytes.Contains(html, []byte("<b>host")) {
		t.Error("HTML contains unescaped markup from the data")
	}
	if !bytes.Contains(html, []byte("PROBLEMS FOUND")) || !bytes.HasSuffix(html, []byte("</html>\n")) {
		t.Error("HTML lacks the verdict or the closing tag")
	}
	md, _ := Encode(Markdown, r, nil)
	for _, line := range strings.Split(string(md), "\n") {
		if strings.HasPrefix(line, "| `/rec/") && strings.Count(strings.ReplaceAll(line, `\|`, ""), "|") != 5 {
			t.Errorf("manifest row with a broken column count: %s", line)
		}
	}
	// Outside code spans, markup from the data is escaped.
	if bytes.Contains(md, []byte("missing <script>")) || !bytes.Contains(md, []byte(`missing \<script\>`)) {
		t.Error("Markdown contains raw HTML from the data")
	}
}

func TestKeysInOpenSSLFormats(t *testing.T) {
	key := newKey(t)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil || !got.Equal(key) {
		t.Fatalf("private key: %v", err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(key.Public())
	pub, err := ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	if err != nil || !pub.Equal(key.Public()) {
		t.Fatalf("public key: %v", err)
	}
	if _, err := ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err == nil {
		t.Error("a private key was accepted as --pubkey")
	}
}
