package report

import (
	"fmt"
	"strings"
	"time"
)

// renderMarkdown writes the report for tickets and e-mail: the same
// sections as the HTML page. Every value from the repository or the
// command line goes through mdText or mdCode, so a file name cannot inject
// markup or break a table.
func renderMarkdown(r *Report) []byte {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	at := func(t time.Time) string { return when(t, r.loc) }
	title := r.Title
	if title == "" {
		title = "Backup verification report"
	}
	if r.Court != "" {
		p("# %s: %s\n\n", mdText(r.Court), mdText(title))
	} else {
		p("# %s\n\n", mdText(title))
	}
	p("## %s\n\n", r.VerdictWords())
	p("**%s** %s\n\n", r.VerdictWords()+".", mdText(r.Summary()))
	if r.Scope.Unchecked != "" {
		p("**Not read in this run:** %s.\n\n", mdText(r.Scope.Unchecked))
	}
	p("Checked %s", at(r.Finished))
	if r.Repository.Label != "" {
		p(" for %s", mdText(r.Repository.Label))
	}
	p(".\n\n")

	p("## In short\n\n")
	var copies []string
	for _, c := range r.Copies {
		copies = append(copies, fmt.Sprintf("%s (**%s**)", mdText(c.Name()), c.Status))
	}
	p("- **Copies checked:** %s.\n", strings.Join(copies, ", "))
	p("- **What was checked:** %s.\n", mdText(r.Scope.Description))
	if r.ManifestAvailable {
		p("- **Backups:** %d %s", r.Checked.Snapshots, plural(r.Checked.Snapshots, "snapshot", "snapshots"))
		if t := r.PeriodText(); t != "" {
			p(", %s", t)
		}
		p(", holding %d files (%s; a file kept in several snapshots counts in each).\n", r.Checked.Files, BinarySize(r.Checked.FileBytes))
	} else {
		p("- **Backups:** %d %s stored (their contents cannot be listed without the password; see Snapshots).\n", r.Checked.Snapshots, plural(r.Checked.Snapshots, "snapshot", "snapshots"))
	}
	if c := r.CoverageSummary(); c != "" {
		p("- **Rotating check:** %s\n", mdText(c))
	}

	p("\n## Copies\n\n| Copy | Status | Stored | Read back and checked in this run | Missing | Damaged | Extra |\n|---|---|---|---|---:|---:|---:|\n")
	for _, c := range r.Copies {
		name := mdCode(c.Location) + " (" + c.Role + ")"
		if c.Label != "" {
			name = "**" + mdText(c.Label) + "**, " + c.Role + ": " + mdCode(c.Location)
		}
		if c.Error != "" {
			name += " " + mdText(c.Error)
		}
		p("| %s | **%s** | %d objects, %s | %s | %d | %d | %d |\n", name, c.Status, c.Objects, BinarySize(c.Bytes), mdText(c.ReadSummary()), len(c.Missing), len(c.Damaged), len(c.Extra))
	}
	explained := copiesExplained
	if r.Scope.Keyless {
		explained = strings.Replace(explained, " The primary's config is read when the repository is opened and is not counted.", "", 1)
	}
	p("\n%s\n", explained)
	for _, c := range r.Copies {
		if c.Role != "replica" {
			continue
		}
		p("\n### %s: %s\n\n", mdText(c.Name()), c.Status)
		if c.Label != "" {
			p("Replica at %s.\n\n", mdCode(c.Location))
		}
		switch {
		case c.Error != "":
			p("Error: %s\n", mdText(c.Error))
		case len(c.Missing)+len(c.Damaged) > 0:
			p("| Object | Finding |\n|---|---|\n")
			for _, o := range c.Missing {
				p("| %s | missing |\n", mdCode(o))
			}
			for _, o := range c.Damaged {
				p("| %s | damaged: its bytes do not match its name |\n", mdCode(o))
			}
		default:
			p("All %d objects the primary holds are present here", c.Objects)
			if c.Hashed > 0 {
				p("; %d were read back and match their fingerprints", c.Hashed)
			}
			p(".\n")
		}
		if len(c.Extra) > 0 {
			p("\n%d objects are in this replica but not in the primary (see Notices).\n", len(c.Extra))
		}
	}

	p("\n## Problems\n\n")
	if len(r.Problems) == 0 {
		p("No problems were found.\n")
	}
	for i, pr := range r.Problems {
		status := "OPEN"
		if pr.Repaired {
			status = "REPAIRED"
		}
		p("%d. **%s:** %s\n", i+1, status, mdText(pr.Message))
		copyName := mdText(r.CopyName(pr.Copy))
		if r.CopyName(pr.Copy) != pr.Copy {
			copyName += " (" + codeSpan(pr.Copy) + ")"
		} else {
			copyName = codeSpan(pr.Copy)
		}
		p("   - Copy: %s\n", copyName)
		for _, f := range [][2]string{{"File or folder", pr.Path}, {"Snapshot", pr.Snapshot}, {"Object", pr.Object}, {"Blob", pr.Blob}} {
			if f[1] != "" {
				p("   - %s: %s\n", f[0], codeSpan(f[1]))
			}
		}
		if pr.Action != "" {
			p("   - What to do: %s\n", mdText(pr.Action))
		}
	}
	if len(r.Notices) > 0 {
		p("\n## Notices\n\n| Copy | Notice | Object |\n|---|---|---|\n")
		for _, n := range r.Notices {
			p("| %s | %s | %s |\n", mdText(r.CopyName(n.Copy)), mdText(strings.TrimSpace(n.Message+" "+n.Action)), mdCode(n.Object))
		}
	}
	if len(r.Repairs) > 0 {
		p("\n## Repairs\n\n| Object | Intact copy taken from | Size |\n|---|---|---:|\n")
		for _, rp := range r.Repairs {
			p("| %s | %s | %s |\n", mdCode(rp.Object), mdText(r.CopyName(rp.From)), ShowBytes(rp.Bytes))
		}
	}

	p("\n## Snapshots\n\n")
	if !r.ManifestAvailable {
		p("> **Note:** %s\n\n", mdText(r.ManifestNote))
	}
	zone := zoneAbbr(r.Finished, r.loc)
	if len(r.Snapshots) > 0 {
		p("A snapshot is one backup run: the state of the backed-up folders at that time. Times are %s.\n\n", mdText(r.TimeZone))
		p("| Snapshot | Taken (%s) | Computer | Folders | Files | Size | Status | File list |\n|---|---|---|---|---:|---:|---|---|\n", mdText(zone))
		for _, s := range r.Snapshots {
			list := "not listed"
			if s.ManifestIncluded {
				list = "below"
			}
			p("| %s | %s | %s | %s | %d | %s | **%s** | %s |\n", mdCode(shortID(s.ID)), localTime(s.Time, r.loc), mdText(s.Host), mdCode(strings.Join(s.Paths, ", ")), s.Files, BinarySize(s.Bytes), s.Status, list)
		}
		if r.ManifestAvailable {
			p("\n%s\n", selectionExplained(r.ManifestSelection))
		}
	} else if r.ManifestAvailable {
		p("The repository has no snapshots.\n")
	}
	if r.ManifestAvailable {
		for _, s := range r.Snapshots {
			if !s.ManifestIncluded {
				continue
			}
			p("\n## Files of snapshot %s\n\n", mdHex(shortID(s.ID)))
			p("Snapshot `%s`, taken %s on %s of %s: %d files, %s; status **%s**. BLAKE3 is the BLAKE3-256 hash of each file's whole content, as `b3sum FILE` prints it. Sizes are in bytes.\n\n",
				mdHex(s.ID), at(s.Time), mdText(s.Host), mdText(strings.Join(s.Paths, ", ")), s.Files, ShowBytes(s.Bytes), s.Status)
			p("| File | Size | Modified (%s) | BLAKE3 |\n|---|---:|---|---|\n", mdText(zone))
			for _, f := range s.Manifest {
				p("| %s | %d | %s | %s |\n", mdCode(f.Path), f.Size, localTime(f.MTime, r.loc), mdCode(f.BLAKE3))
			}
		}
	}

	p("\n## Technical details\n\n| | |\n|---|---|\n")
	p("| Repository id | %s |\n", mdCode(r.Repository.ID))
	p("| Location | %s |\n", mdCode(r.Repository.Location))
	p("| Checked | %s |\n", mdText(r.Scope.Description))
	p("| Started | %s |\n", at(r.Started))
	p("| Finished | %s |\n", at(r.Finished))
	p("| Time zone of this report | %s |\n", mdText(r.TimeZone))
	p("| Checked on computer | %s |\n", mdText(r.Host))
	p("| Program | courtbak %s |\n", mdText(r.Courtbak))
	p("| Snapshots | %d |\n", r.Checked.Snapshots)
	if r.ManifestAvailable {
		p("| Directory trees read | %d |\n", r.Checked.Trees)
		p("| Index files, key files | %d, %d |\n", r.Checked.IndexFiles, r.Checked.Keys)
		p("| Data packs | %d listed in the index, %d read in full at the primary |\n", r.Checked.Packs, r.Checked.PacksRead)
		p("| Blobs decrypted and checked | %d (a blob is one encrypted piece of a file or folder list) |\n", r.Checked.BlobsRead)
	} else {
		p("| Data packs | %d stored, %d read in full |\n", r.Checked.Packs, r.Checked.PacksRead)
	}
	p("| Objects read back and compared with their names | %d, in all copies together |\n", r.Checked.ObjectsHashed)
	p("| Bytes read | %s, in all copies together |\n", ShowBytes(r.Checked.BytesRead))
	return []byte(b.String())
}

// copiesExplained explains the Copies table's columns.
const copiesExplained = "*Stored* counts every object of a copy: the data packs (the recordings, encrypted and cut into pieces of tens of MiB) " +
	"and the small metadata objects (index, snapshots, keys and config). *Read back* counts the objects whose bytes were read in this run " +
	"and compared with their fingerprint (each object is named by the BLAKE3 hash of its bytes); data packs are read only when the run " +
	"reads data (all of it, or a rotating daily share). The primary's config is read when the repository is opened and is not counted. " +
	"*Missing* and *damaged* objects are problems; *extra* objects at a replica are usually backups the primary has already pruned."

// selectionExplained says which snapshots' file lists a report carries.
func selectionExplained(sel string) string {
	switch sel {
	case ManifestAll:
		return "This report lists the files of every snapshot."
	case ManifestChosen:
		return "This report lists the files of the snapshots chosen with `--manifest`."
	}
	return "This report lists the files of the newest snapshot of each computer and set of folders; " +
		"`courtbak verify --manifest all` or `--manifest SNAPSHOT` writes others."
}

// mdText escapes text so Markdown shows it literally: every character that
// could start inline markup is backslash-escaped, and line breaks become
// spaces. Callers never put it at the start of a line, where list and
// heading markers would count.
func mdText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r':
			b.WriteByte(' ')
		case strings.ContainsRune("\\`*_[]<>#!|~&", r):
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// mdCode shows s as a code span in a table cell, with pipes escaped:
// tables split on them before code spans are parsed.
func mdCode(s string) string {
	return codeSpan(strings.ReplaceAll(s, "|", `\|`))
}

// codeSpan shows s as a code span: fenced with more backticks than it
// contains in a row, on one line.
func codeSpan(s string) string {
	if s == "" {
		return ""
	}
	s = strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}

// mdHex keeps only hex digits: ids are shown inside fixed backticks.
func mdHex(s string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune("0123456789abcdef", r) {
			return r
		}
		return -1
	}, s)
}
