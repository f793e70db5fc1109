package report

import (
	"fmt"
	"strings"
)

// renderMarkdown writes the report for tickets and e-mail: the same
// sections as the HTML page. Every value from the repository or the
// command line goes through mdText or mdCode, so a file name cannot inject
// markup or break a table.
func renderMarkdown(r *Report) []byte {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("# %s\n\n", r.Headline())
	p("courtbak verification report of repository `%s`.\n\n", mdHex(r.Repository.ID))
	p("**%s** %s\n\nChecked: %s.\n\n", r.Headline()+".", mdText(r.Summary()), mdText(r.Scope.Description))

	p("## What was checked\n\n| | |\n|---|---|\n")
	p("| Repository | %s |\n", mdCode(r.Repository.ID))
	p("| Location | %s |\n", mdCode(r.Repository.Location))
	p("| Checked | %s |\n", mdText(r.Scope.Description))
	p("| Started | %s |\n", showTime(r.Started))
	p("| Finished | %s |\n", showTime(r.Finished))
	p("| Checked on computer | %s |\n", mdText(r.Host))
	p("| Program | courtbak %s |\n", mdText(r.Courtbak))
	p("| Snapshots | %d |\n", r.Checked.Snapshots)
	if r.ManifestAvailable {
		p("| Files in all snapshots | %d files, %s |\n", r.Checked.Files, ShowBytes(r.Checked.FileBytes))
		p("| Packs | %d indexed, %d read in full |\n", r.Checked.Packs, r.Checked.PacksRead)
	} else {
		p("| Packs | %d stored, %d read in full |\n", r.Checked.Packs, r.Checked.PacksRead)
	}
	p("| Objects hashed | %d |\n", r.Checked.ObjectsHashed)
	p("| Data read | %s |\n\n", ShowBytes(r.Checked.BytesRead))

	p("## Copies\n\n| Copy | Role | Status | Objects | Hashed | Missing | Damaged | Extra |\n|---|---|---|---:|---:|---:|---:|---:|\n")
	for _, c := range r.Copies {
		loc := mdCode(c.Location)
		if c.Error != "" {
			loc += " " + mdText(c.Error)
		}
		p("| %s | %s | **%s** | %d | %d | %d | %d | %d |\n", loc, c.Role, c.Status, c.Objects, c.Hashed, len(c.Missing), len(c.Damaged), len(c.Extra))
	}
	for _, c := range r.Copies {
		if c.Role != "replica" {
			continue
		}
		p("\n### Replica %s: %s\n\n", mdCode(c.Location), c.Status)
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
			p("All %d objects are present", c.Objects)
			if c.Hashed > 0 {
				p("; %d were read and match their names", c.Hashed)
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
		for _, f := range [][2]string{{"Copy", pr.Copy}, {"Object", pr.Object}, {"Blob", pr.Blob}, {"Snapshot", pr.Snapshot}, {"File or folder", pr.Path}} {
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
			p("| %s | %s | %s |\n", mdCode(n.Copy), mdText(strings.TrimSpace(n.Message+" "+n.Action)), mdCode(n.Object))
		}
	}
	if len(r.Repairs) > 0 {
		p("\n## Repairs\n\n| Object | Intact copy taken from | Size |\n|---|---|---:|\n")
		for _, rp := range r.Repairs {
			p("| %s | %s | %s |\n", mdCode(rp.Object), mdCode(rp.From), ShowBytes(rp.Bytes))
		}
	}

	p("\n## Snapshots\n\n")
	if !r.ManifestAvailable {
		p("> **Note:** %s\n\n", mdText(r.ManifestNote))
	}
	if len(r.Snapshots) > 0 {
		p("| Snapshot | Time | Computer | Paths | Files | Size | Status |\n|---|---|---|---|---:|---:|---|\n")
		for _, s := range r.Snapshots {
			p("| %s | %s | %s | %s | %d | %s | **%s** |\n", mdCode(shortID(s.ID)), showTime(s.Time), mdText(s.Host), mdCode(strings.Join(s.Paths, ", ")), s.Files, ShowBytes(s.Bytes), s.Status)
		}
	} else if r.ManifestAvailable {
		p("The repository has no snapshots.\n")
	}
	if r.ManifestAvailable {
		for _, s := range r.Snapshots {
			p("\n## Evidence manifest of snapshot %s\n\n", mdHex(shortID(s.ID)))
			p("Snapshot `%s`, taken %s on %s of %s: %d files, %s; status **%s**. BLAKE3 is the BLAKE3-256 hash of each file's whole content, as `b3sum` prints it.\n\n",
				mdHex(s.ID), showTime(s.Time), mdText(s.Host), mdText(strings.Join(s.Paths, ", ")), s.Files, ShowBytes(s.Bytes), s.Status)
			p("| File | Size (bytes) | Modified (UTC) | BLAKE3 |\n|---|---:|---|---|\n")
			for _, f := range s.Manifest {
				p("| %s | %d | %s | %s |\n", mdCode(f.Path), f.Size, showTime(f.MTime), mdCode(f.BLAKE3))
			}
		}
	}
	return []byte(b.String())
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
