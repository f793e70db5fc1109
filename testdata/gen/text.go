package gen

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// Marker is a plaintext string written into every case file, so tests can
// check the repository never contains plaintext.
const Marker = "COURTBAK-PLAINTEXT-MARKER-7f3a"

// Case files are between minCase and maxCase bytes; the target stays below
// maxCase because JSON indentation is only estimated while building.
const (
	minCase    = 200
	maxCase    = 20 << 10
	maxTarget  = 18 << 10
	courtName  = "City Court"
	dateLayout = "2006-01-02"
)

var (
	firstNames = []string{"Anna", "Boris", "Clara", "Dmitri", "Elena", "Farid", "Galina", "Hugo", "Irina", "Jonas",
		"Katarina", "Lev", "Marta", "Nikolai", "Olga", "Pavel", "Rosa", "Sergei", "Tamara", "Viktor", "Yana", "Zoran"}
	surnames = []string{"Abramov", "Bauer", "Costa", "Dvorak", "Erikson", "Fischer", "Horvat", "Ivanova", "Jovanovic",
		"Kowalski", "Lindqvist", "Moreau", "Novak", "Orlov", "Petrov", "Quinn", "Rossi", "Schmidt", "Tanaka", "Weber"}
	caseTypes = []string{"civil", "criminal", "family", "administrative", "commercial", "labour"}
	roles     = []string{"plaintiff", "defendant", "witness", "counsel for the plaintiff", "counsel for the defendant", "expert"}
	subjects  = []string{"breach of contract", "unpaid wages", "custody of a minor", "property boundary", "traffic offence",
		"theft", "fraud", "tenancy dispute", "insurance claim", "building permit"}
	events = []string{"Statement of claim filed", "Summons served on the defendant", "Motion to adjourn granted",
		"Expert report received", "Witness list submitted", "Hearing held, recording attached",
		"Settlement talks reported", "Judgment reserved", "Costs order issued", "Appeal notice received"}
	remarks = []string{
		"The court heard {who}, who confirmed the account given in writing.",
		"Counsel asked for more time to file evidence on behalf of {who}; the request was noted.",
		"An objection by {who} to the admission of a late exhibit was overruled.",
		"The judge reminded {who} of the duty to tell the truth.",
		"The recording was paused for ten minutes at the request of {who}.",
		"Documents concerning the {subject} were presented by {who}.",
		"The judge summarised the issues in dispute regarding the {subject}.",
	}
)

type party struct {
	Role string `json:"role"`
	Name string `json:"name"`
}

type docketEntry struct {
	Date  string `json:"date"`
	Event string `json:"event"`
}

type caseMeta struct {
	Marker     string        `json:"marker"`
	Court      string        `json:"court"`
	CaseNumber string        `json:"case_number"`
	Type       string        `json:"type"`
	Subject    string        `json:"subject"`
	Judge      string        `json:"judge"`
	Opened     string        `json:"opened"`
	Sealed     bool          `json:"sealed"`
	Parties    []party       `json:"parties"`
	Recordings []string      `json:"recordings,omitempty"`
	Docket     []docketEntry `json:"docket,omitempty"`
}

// courtCase is one case folder and what the generator puts in it.
type courtCase struct {
	number     int
	opened     time.Time
	sealed     bool
	judge      string
	kind       string
	subject    string
	parties    []party
	recordings []string
}

func newCase(rng *rand.Rand, number int, opened time.Time, sealed bool) *courtCase {
	c := &courtCase{
		number:  number,
		opened:  opened,
		sealed:  sealed,
		judge:   personName(rng),
		kind:    pick(rng, caseTypes),
		subject: pick(rng, subjects),
	}
	for i := range 2 + rng.IntN(4) {
		role := roles[i%2]
		if i >= 2 {
			role = pick(rng, roles)
		}
		c.parties = append(c.parties, party{Role: role, Name: personName(rng)})
	}
	return c
}

func (c *courtCase) id() string {
	return fmt.Sprintf("%d-C-%05d", c.opened.Year(), c.number)
}

// metadataJSON returns the case's metadata.json, padded with docket entries
// to about target bytes.
func (c *courtCase) metadataJSON(rng *rand.Rand, target int) []byte {
	m := caseMeta{
		Marker: Marker, Court: courtName, CaseNumber: c.id(), Type: c.kind, Subject: c.subject,
		Judge: c.judge, Opened: c.opened.Format(dateLayout), Sealed: c.sealed,
		Parties: c.parties, Recordings: c.recordings,
	}
	// Marshalling these plain structs cannot fail.
	base, _ := json.MarshalIndent(m, "", "  ")
	day := c.opened
	// An indented entry costs its compact encoding plus newlines and indentation.
	for size := len(base); size < min(target, maxTarget); {
		day = day.AddDate(0, 0, 1+rng.IntN(20))
		e := docketEntry{Date: day.Format(dateLayout), Event: pick(rng, events)}
		enc, _ := json.Marshal(e)
		size += len(enc) + 24
		m.Docket = append(m.Docket, e)
	}
	out, _ := json.MarshalIndent(m, "", "  ")
	return append(out, '\n')
}

// text returns a free-text case document (notes, docket sheet) of about
// target bytes, never less than minCase.
func (c *courtCase) text(rng *rand.Rand, title string, target int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s — %s %s\n%s\nJudge: %s. Subject: %s (%s).\n\n",
		title, courtName, c.id(), Marker, c.judge, c.subject, c.kind)
	day := c.opened
	for b.Len() < max(minCase, min(target, maxTarget)) {
		day = day.AddDate(0, 0, rng.IntN(3))
		p := c.parties[rng.IntN(len(c.parties))]
		who := p.Name
		if rng.IntN(2) == 0 {
			who = "the " + p.Role
		}
		line := strings.NewReplacer("{who}", who, "{subject}", c.subject).Replace(pick(rng, remarks))
		fmt.Fprintf(&b, "%s  %s\n", day.Format(dateLayout), line)
	}
	return []byte(b.String())
}

func personName(rng *rand.Rand) string {
	return pick(rng, firstNames) + " " + pick(rng, surnames)
}

func pick(rng *rand.Rand, words []string) string { return words[rng.IntN(len(words))] }

// caseSize draws a case-file size log-uniformly between minCase and maxCase:
// most case files are small, a few are long.
func caseSize(rng *rand.Rand) int {
	lo, hi := math.Log(minCase), math.Log(maxCase)
	return int(math.Exp(lo + rng.Float64()*(hi-lo)))
}
