package prune

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/courtbak/courtbak/repo/blob"
)

// encodePlan writes exactly what json.MarshalIndent writes, for plans with
// lists that are nil, empty, or long, so the plan's format is unchanged.
func TestEncodePlanIsMarshalIndent(t *testing.T) {
	marked := time.Date(2026, 11, 2, 22, 0, 0, 123, time.FixedZone("court", 3600))
	var many []Pack
	for i := range 1000 {
		many = append(many, Pack{ID: id(byte(i)), Size: int64(i) << 20})
	}
	plans := []*Plan{
		{},
		{Location: `s3:"court"/a\b`, Marked: marked, Snapshots: []blob.ID{}, Dead: []Pack{}},
		{Location: "local:/srv/repo", Marked: marked, Snapshots: []blob.ID{id(1), id(2)}, Superseded: []blob.ID{id(3)},
			Written: []blob.ID{id(4), id(5)}, Dead: many, Unindexed: []Pack{{ID: id(6), Size: 7}}},
	}
	for i, p := range plans {
		want, err := json.MarshalIndent(p, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := encodePlan(&got, p); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("plan %d:\n%s\nwant\n%s", i, got.Bytes(), want)
		}
	}
}
