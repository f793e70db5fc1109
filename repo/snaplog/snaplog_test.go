package snaplog

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"
)

func name(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func mac(b []byte) string {
	m := hmac.New(sha256.New, []byte("test key"))
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

func TestCheckTellsForgetFromDeletion(t *testing.T) {
	a, b, c, d := name(t), name(t), name(t), name(t)
	r1, r2, r3 := name(t), name(t), name(t)
	records := map[string]*Record{
		r1: {Added: []string{a, b}},
		r2: {Prev: []string{r1}, Added: []string{c}},
		r3: {Prev: []string{r2}, Forgotten: []string{a}},
	}
	if h := Heads(records); len(h) != 1 || h[0] != r3 {
		t.Errorf("heads %v, want [%s]", h, r3)
	}
	// a forgotten and gone, b deleted behind courtbak's back, c present,
	// d stored but not logged.
	findings := Check(records, map[string]bool{c: true, d: true})
	kinds := map[string]string{}
	for _, f := range findings {
		kinds[f.Kind] += f.Snapshot
		if f.Problem != (f.Kind == KindSnapshotDeleted || f.Kind == KindRecordMissing) {
			t.Errorf("%s: problem %v", f.Kind, f.Problem)
		}
	}
	if kinds[KindSnapshotDeleted] != b || kinds[KindUnlogged] != d || len(findings) != 2 {
		t.Errorf("findings %+v", findings)
	}
	// A record gone from the middle of the log.
	delete(records, r2)
	findings = Check(records, map[string]bool{b: true, c: true})
	if len(findings) != 2 || findings[0].Kind != KindRecordMissing || findings[0].Object != "log/"+r2 {
		t.Errorf("after deleting a record: %+v", findings)
	}
	// Before the log, there is nothing to check.
	if f := Check(nil, map[string]bool{a: true}); f != nil {
		t.Errorf("empty log: %+v", f)
	}
}

func TestEncodeParseAndMAC(t *testing.T) {
	rec := &Record{Time: time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC), Host: "city-a", Prev: []string{name(t)}, Added: []string{name(t)}}
	data, err := Encode(rec, mac)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.MAC != mac(got.MACInput()) || got.Host != "city-a" || got.Added[0] != rec.Added[0] {
		t.Errorf("round trip: %+v", got)
	}
	// A forget record added by someone without the key does not verify.
	got.Forgotten = []string{got.Added[0]}
	if got.MAC == mac(got.MACInput()) {
		t.Error("a changed record still verifies")
	}
	for _, bad := range []string{`{`, `{"version":2}`, `{"version":1,"added":["../x"]}`} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%s) accepted", bad)
		}
	}
}
