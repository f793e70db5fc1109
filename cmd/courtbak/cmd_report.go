package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/courtbak/courtbak/repo/report"
)

func newReportCommand(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "report", Short: "Check verification reports"}
	var pubkey string
	verify := &cobra.Command{
		Use:   "verify FILE --pubkey PUB.pem",
		Short: "Check that a report is unchanged and signed with the key whose public half is PUB.pem",
		Long: `Check a report written by 'courtbak verify --report FILE --sign-key KEY.pem':
exit 0 when it is unchanged and signed by the key whose public half is in
PUB.pem (PEM, as 'openssl pkey -in KEY.pem -pubout' writes it); exit 1 when its
content was changed, it was signed by another key, or it is not signed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if pubkey == "" {
				return errors.New("give --pubkey PUB.pem: the public key of whoever signed the report")
			}
			b, err := os.ReadFile(pubkey)
			if err != nil {
				return fmt.Errorf("read public key: %w", err)
			}
			pub, err := report.ParsePublicKey(b)
			if err != nil {
				return fmt.Errorf("public key %s: %w", pubkey, err)
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read report: %w", err)
			}
			format, _ := report.FormatOf(args[0]) // unknown extension: try every format
			v, err := report.Verify(data, format, pub)
			if g.json {
				out := map[string]any{"file": args[0], "valid": err == nil}
				if err != nil {
					out["reason"], out["error"] = reportReason(err), err.Error()
				} else {
					out["format"], out["blake3"], out["covers_bytes"], out["key_fingerprint"] = v.Format, v.BLAKE3, v.Covers, v.Fingerprint
				}
				if jerr := g.printJSON(out); jerr != nil {
					return jerr
				}
			}
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			g.printf("%s: unchanged, signed by the key of %s (fingerprint %s)\n", args[0], pubkey, v.Fingerprint)
			return nil
		},
	}
	verify.Flags().StringVar(&pubkey, "pubkey", "", "the signer's Ed25519 public key, `PUB.pem` (PEM SubjectPublicKeyInfo)")
	c.AddCommand(verify)
	return c
}

// reportReason names a failed check for --json output.
func reportReason(err error) string {
	switch {
	case errors.Is(err, report.ErrChanged):
		return "content_changed"
	case errors.Is(err, report.ErrOtherKey):
		return "other_key"
	case errors.Is(err, report.ErrUnsigned):
		return "not_signed"
	case errors.Is(err, report.ErrNoSeal):
		return "no_seal"
	}
	return "error"
}
