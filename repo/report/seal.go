package report

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/courtbak/courtbak/crypto"
)

// The integrity seal is the last part of every report file. It states how
// many bytes precede it (covers), the BLAKE3-256 of exactly those bytes and,
// when signed, an Ed25519 signature over that hash and the signer's public
// key. The seal is rendered from a fixed template per format; a verifier
// re-renders it from the values it parsed and requires the same bytes, so
// nothing can be added to or changed in the seal either. docs/report-schema.md
// specifies it for independent verification (head -c N FILE | b3sum).

// Format is a report file format.
type Format string

// Report formats, named by file extension.
const (
	JSON     Format = "json"
	HTML     Format = "html"
	Markdown Format = "md"
)

// Formats lists every format.
var Formats = []Format{JSON, HTML, Markdown}

// FormatOf returns the format a file name asks for.
func FormatOf(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return JSON, nil
	case ".html", ".htm":
		return HTML, nil
	case ".md", ".markdown":
		return Markdown, nil
	}
	return "", fmt.Errorf("report file %q: name it .json, .html or .md to choose the format", path)
}

// signatureContext separates report signatures from anything else the same
// key might sign.
const signatureContext = "courtbak report signature v1\x00"

// SignedMessage is what the Ed25519 signature covers: the context string
// followed by the 32-byte hash.
func SignedMessage(sum [32]byte) []byte {
	return append([]byte(signatureContext), sum[:]...)
}

// Seal is the integrity data of one report file.
type Seal struct {
	Covers    int64
	Sum       [32]byte
	Signature []byte            // nil when unsigned
	PublicKey ed25519.PublicKey // nil when unsigned
}

// Signed reports whether the seal carries a signature.
func (s *Seal) Signed() bool { return s.Signature != nil }

// Fingerprint identifies a public key: the lowercase hex SHA-256 of its
// DER SubjectPublicKeyInfo, as `openssl pkey -pubin -outform DER | sha256sum`
// prints it.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(spki(pub))
	return hex.EncodeToString(sum[:])
}

func spki(pub ed25519.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err) // cannot fail for an Ed25519 key
	}
	return der
}

// SealBody appends the integrity seal to a rendered report body, signed with
// key unless it is nil.
func SealBody(f Format, body []byte, key ed25519.PrivateKey) []byte {
	s := Seal{Covers: int64(len(body)), Sum: crypto.Hash(body)}
	if key != nil {
		s.Signature = ed25519.Sign(key, SignedMessage(s.Sum))
		s.PublicKey = key.Public().(ed25519.PublicKey)
	}
	return append(body, renderSeal(f, &s)...)
}

func renderSeal(f Format, s *Seal) string {
	var b strings.Builder
	sum := hex.EncodeToString(s.Sum[:])
	switch f {
	case JSON:
		b.WriteString(jsonSealStart)
		fmt.Fprintf(&b, "    \"algorithm\": \"blake3-256, ed25519\",\n    \"covers_bytes\": %d,\n    \"blake3\": \"%s\"", s.Covers, sum)
		if s.Signed() {
			fmt.Fprintf(&b, ",\n    \"signature\": \"%s\",\n    \"public_key\": \"%s\",\n    \"key_fingerprint\": \"%s\"",
				base64.StdEncoding.EncodeToString(s.Signature), base64.StdEncoding.EncodeToString(spki(s.PublicKey)), Fingerprint(s.PublicKey))
		}
		b.WriteString("\n  }\n}\n")
	case HTML:
		b.WriteString(htmlSealStart)
		fmt.Fprintf(&b, "<h2>Integrity of this report</h2>\n<p>BLAKE3-256 of the first %d bytes of this file: <code>%s</code></p>\n", s.Covers, sum)
		if s.Signed() {
			fmt.Fprintf(&b, "<p>Signed with the Ed25519 key whose SHA-256 fingerprint is <code>%s</code>.</p>\n", Fingerprint(s.PublicKey))
		} else {
			b.WriteString("<p><strong>This report is not signed.</strong> The hash shows accidental damage only.</p>\n")
		}
		b.WriteString("<p>To check this report: <code>courtbak report verify REPORT.html --pubkey PUBLIC-KEY.pem</code></p>\n</footer>\n")
		b.WriteString(sealComment(s))
		b.WriteString("</body>\n</html>\n")
	case Markdown:
		b.WriteString(mdSealStart)
		fmt.Fprintf(&b, "\nBLAKE3-256 of the first %d bytes of this file: `%s`\n\n", s.Covers, sum)
		if s.Signed() {
			fmt.Fprintf(&b, "Signed with the Ed25519 key whose SHA-256 fingerprint is `%s`.\n\n", Fingerprint(s.PublicKey))
		} else {
			b.WriteString("**This report is not signed.** The hash shows accidental damage only.\n\n")
		}
		b.WriteString("To check this report: `courtbak report verify REPORT.md --pubkey PUBLIC-KEY.pem`\n\n")
		b.WriteString(sealComment(s))
	}
	return b.String()
}

// Where each format's seal begins.
const (
	jsonSealStart = ",\n  \"integrity\": {\n"
	htmlSealStart = "<footer class=\"integrity\">\n"
	mdSealStart   = "\n---\n\n## Integrity of this report\n"
)

func sealStart(f Format) string {
	switch f {
	case JSON:
		return jsonSealStart
	case HTML:
		return htmlSealStart
	}
	return mdSealStart
}

// sealComment is the machine-readable line of the HTML and Markdown seals.
func sealComment(s *Seal) string {
	c := fmt.Sprintf("<!-- courtbak-integrity v1 covers=%d blake3=%s", s.Covers, hex.EncodeToString(s.Sum[:]))
	if s.Signed() {
		c += fmt.Sprintf(" signature=%s public-key=%s", base64.StdEncoding.EncodeToString(s.Signature), base64.StdEncoding.EncodeToString(spki(s.PublicKey)))
	}
	return c + " -->\n"
}

var commentRE = regexp.MustCompile(`<!-- courtbak-integrity v1 covers=([0-9]{1,19}) blake3=([0-9a-f]{64})(?: signature=([A-Za-z0-9+/=]+) public-key=([A-Za-z0-9+/=]+))? -->`)

type jsonSeal struct {
	Covers    int64  `json:"covers_bytes"`
	BLAKE3    string `json:"blake3"`
	Signature string `json:"signature"`
	PublicKey string `json:"public_key"`
}

// Errors of Verify; the returned error wraps one of them with details.
var (
	ErrNoSeal   = errors.New("no integrity seal found: not a courtbak report, or its end was cut off")
	ErrChanged  = errors.New("content was changed")
	ErrUnsigned = errors.New("not signed")
	ErrOtherKey = errors.New("signed by another key")
)

// parseSeal finds the seal at the end of data and returns it with the
// offset where it starts.
func parseSeal(f Format, data []byte) (*Seal, int64, error) {
	start := bytes.LastIndex(data, []byte(sealStart(f)))
	if start < 0 {
		return nil, 0, ErrNoSeal
	}
	tail := data[start:]
	var (
		covers           int64
		sum, sig, pubDER string
	)
	if f == JSON {
		obj := bytes.TrimSuffix(tail[len(",\n  \"integrity\": "):], []byte("\n}\n"))
		var js jsonSeal
		if err := json.Unmarshal(obj, &js); err != nil {
			return nil, 0, fmt.Errorf("%w: the integrity seal is not valid (%v)", ErrChanged, err)
		}
		covers, sum, sig, pubDER = js.Covers, js.BLAKE3, js.Signature, js.PublicKey
	} else {
		m := commentRE.FindSubmatch(tail)
		if m == nil {
			return nil, 0, fmt.Errorf("%w: the integrity seal is incomplete", ErrChanged)
		}
		n, err := strconv.ParseInt(string(m[1]), 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: the integrity seal is not valid", ErrChanged)
		}
		covers, sum, sig, pubDER = n, string(m[2]), string(m[3]), string(m[4])
	}
	s := &Seal{Covers: covers}
	b, err := hex.DecodeString(sum)
	if err != nil || len(b) != len(s.Sum) {
		return nil, 0, fmt.Errorf("%w: the integrity seal's hash is not valid", ErrChanged)
	}
	copy(s.Sum[:], b)
	if sig != "" || pubDER != "" {
		if s.Signature, err = base64.StdEncoding.DecodeString(sig); err != nil || len(s.Signature) != ed25519.SignatureSize {
			return nil, 0, fmt.Errorf("%w: the signature in the seal is not valid", ErrChanged)
		}
		der, err := base64.StdEncoding.DecodeString(pubDER)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: the public key in the seal is not valid", ErrChanged)
		}
		if s.PublicKey, err = parsePublicDER(der); err != nil {
			return nil, 0, fmt.Errorf("%w: the public key in the seal is not valid (%v)", ErrChanged, err)
		}
	}
	if renderSeal(f, s) != string(tail) {
		return nil, 0, fmt.Errorf("%w: the integrity seal was edited, or text follows it", ErrChanged)
	}
	return s, int64(start), nil
}

// Verification describes a report that passed Verify.
type Verification struct {
	Format      Format
	Covers      int64
	BLAKE3      string
	Fingerprint string
}

// Verify checks a report file: its seal is intact, the hash matches the
// content before it, and the signature is valid for pub. The format is f,
// or found by trying each when f is empty.
func Verify(data []byte, f Format, pub ed25519.PublicKey) (*Verification, error) {
	formats := []Format{f}
	if f == "" {
		formats = Formats
	}
	var (
		s     *Seal
		start int64
		err   error
	)
	for _, f = range formats {
		if s, start, err = parseSeal(f, data); !errors.Is(err, ErrNoSeal) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if s.Covers != start {
		return nil, fmt.Errorf("%w: the seal covers %d bytes but follows %d", ErrChanged, s.Covers, start)
	}
	if got := crypto.Hash(data[:start]); got != s.Sum {
		return nil, fmt.Errorf("%w: its BLAKE3-256 is %x, the seal records %x", ErrChanged, got[:8], s.Sum[:8])
	}
	v := &Verification{Format: f, Covers: s.Covers, BLAKE3: hex.EncodeToString(s.Sum[:])}
	if !s.Signed() {
		return nil, fmt.Errorf("%w: the report carries a hash but no signature, so anyone could have written it (write it with --sign-key)", ErrUnsigned)
	}
	msg := SignedMessage(s.Sum)
	if ed25519.Verify(pub, msg, s.Signature) {
		v.Fingerprint = Fingerprint(pub)
		return v, nil
	}
	if !s.PublicKey.Equal(pub) && ed25519.Verify(s.PublicKey, msg, s.Signature) {
		return nil, fmt.Errorf("%w: the report is intact but was signed by the key with fingerprint %s, not by the given key %s",
			ErrOtherKey, Fingerprint(s.PublicKey), Fingerprint(pub))
	}
	return nil, fmt.Errorf("%w: the hash was recomputed after an edit or the seal was altered: the signature does not match", ErrChanged)
}

// ParsePrivateKey reads a PEM PKCS#8 Ed25519 private key, as
// `openssl genpkey -algorithm ed25519` writes it.
func ParsePrivateKey(pemBytes []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	switch {
	case block == nil:
		return nil, errors.New("not a PEM file (make one with: openssl genpkey -algorithm ed25519 -out KEY.pem)")
	case block.Type == "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("the key is encrypted; courtbak needs an unencrypted key (protect the file with permissions instead)")
	case block.Type != "PRIVATE KEY":
		return nil, fmt.Errorf("PEM block %q is not a PKCS#8 private key (make one with: openssl genpkey -algorithm ed25519)", block.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the private key is a %T, not Ed25519 (make one with: openssl genpkey -algorithm ed25519)", k)
	}
	return ek, nil
}

// ParsePublicKey reads a PEM SubjectPublicKeyInfo Ed25519 public key, as
// `openssl pkey -pubout` writes it.
func ParsePublicKey(pemBytes []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	switch {
	case block == nil:
		return nil, errors.New("not a PEM file (make one with: openssl pkey -in KEY.pem -pubout -out PUB.pem)")
	case block.Type != "PUBLIC KEY":
		return nil, fmt.Errorf("PEM block %q is not a public key (make one with: openssl pkey -in KEY.pem -pubout -out PUB.pem)", block.Type)
	}
	return parsePublicDER(block.Bytes)
}

func parsePublicDER(der []byte) (ed25519.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("the public key is a %T, not Ed25519", k)
	}
	return ek, nil
}
