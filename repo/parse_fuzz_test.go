package repo

import (
	"testing"

	"github.com/courtbak/courtbak/repo/blob"
)

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"format":"courtbak","version":1,"id":"` + blob.ID{2}.String() + `","secrets":"AAAA"}`))
	f.Add([]byte(`{"format":"courtbak","version":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if c.Format != "courtbak" || c.Version != FormatVersion {
			t.Fatalf("accepted config %+v", c)
		}
		if _, err := blob.ParseID(c.ID); err != nil {
			t.Fatalf("accepted config id %q", c.ID)
		}
	})
}
