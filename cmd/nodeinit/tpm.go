package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nodeinit/nodeinit/measure"
	"github.com/nodeinit/nodeinit/operr"
)

func init() {
	register("tpm", "measured boot: print and check the TPM event log, quote it, verify a quote", tpmGroup.run)
}

var tpmGroup = group{
	name:    "tpm",
	usage:   tpmUsage,
	example: "nodeinit tpm verify quote.json --nonce 00112233 --expect-image SHA256",
	subs: map[string]func(args []string, stdout, stderr io.Writer) error{
		"log":    runTPMLog,
		"check":  runTPMCheck,
		"quote":  runTPMQuote,
		"verify": runTPMVerify,
	},
}

const tpmUsage = `usage:
  nodeinit tpm log    [--log FILE] [--json]
  nodeinit tpm check  [--log FILE] [--tpm DEVICE]
  nodeinit tpm quote  --nonce HEX [--log FILE] [--tpm DEVICE]
  nodeinit tpm verify QUOTE.json --nonce HEX [--expect-image SHA256] [--expect-action A]
                      [--expect-steps S,S,…] [--ak FILE]

log prints the event log, check replays it and compares with the TPM's PCRs
(exit status 1 on a mismatch), quote prints a signed quote of PCRs 11 and 23 with
the log and the attestation key as JSON, and verify checks such a quote on any
machine, without a TPM. The log is systemd's /run/log/systemd/tpm2-measure.log.
`

func tpmFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("tpm "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs, fs.String("log", measure.DefaultLogPath, "event log (CEL-JSON records, JSON-SEQ)")
}

func noArgs(fs *flag.FlagSet, fix string) error {
	if fs.NArg() > 0 {
		return usageError(fs.Name(), fmt.Sprintf("unexpected argument %q", fs.Arg(0)), fix)
	}
	return nil
}

func runTPMLog(args []string, stdout, stderr io.Writer) error {
	fs, logPath := tpmFlags("log", stderr)
	asJSON := fs.Bool("json", false, "print the records as a JSON array")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs, "name the log with --log FILE"); err != nil {
		return err
	}
	recs, err := measure.ReadLog(*logPath)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, recs)
	}
	if len(recs) == 0 {
		fmt.Fprintf(stdout, "%s holds no records: nothing was measured in this boot\n", *logPath)
		return nil
	}
	measure.WriteText(stdout, recs)
	return nil
}

func openTPMFlag(path string) (measure.TPM, error) {
	d, err := measure.Open(path)
	if errors.Is(err, measure.ErrNoTPM) {
		return nil, operr.Wrap(err, "open "+path, "run it on a node with a TPM 2.0, or name the TPM with --tpm DEVICE", "")
	}
	if err != nil {
		return nil, fmt.Errorf("open TPM %s: %w", path, err)
	}
	return d, nil
}

func runTPMCheck(args []string, stdout, stderr io.Writer) error {
	fs, logPath := tpmFlags("check", stderr)
	dev := fs.String("tpm", measure.DefaultDevice, "TPM device, or an emulator's unix socket")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs, "name the log with --log FILE and the TPM with --tpm DEVICE"); err != nil {
		return err
	}
	t, err := openTPMFlag(*dev)
	if err != nil {
		return err
	}
	defer t.Close()
	res, err := measure.Check(t, *logPath)
	if err != nil {
		return err
	}
	for _, b := range res.Banks {
		for _, p := range measure.QuotedPCRs {
			mark := "ok"
			if string(res.Replay[b.Name][p]) != string(res.TPM[b.Name][p]) {
				mark = "MISMATCH"
			}
			fmt.Fprintf(stdout, "PCR %2d %-6s %x %s\n", p, b.Name, res.TPM[b.Name][p], mark)
		}
	}
	if len(res.Mismatches) > 0 {
		var ms []string
		for _, m := range res.Mismatches {
			ms = append(ms, m.String())
		}
		return operr.New(fmt.Sprintf("tpm check: %d of the TPM's PCRs differ from the replay of %s", len(res.Mismatches), *logPath),
			strings.Join(ms, "; "), "something measured into these PCRs without logging it, or the log was altered: do not trust this boot's record", "")
	}
	fmt.Fprintf(stdout, "the TPM's PCRs %v match the %d records of %s\n", measure.QuotedPCRs, len(res.Records), *logPath)
	return nil
}

func parseNonce(cmd, s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if s == "" || err != nil || len(b) > 32 {
		return nil, usageError(cmd, fmt.Sprintf("--nonce %q is not 1 to 32 bytes of hex", s),
			"give the verifier's fresh random challenge, e.g. --nonce $(openssl rand -hex 16)")
	}
	return b, nil
}

func runTPMQuote(args []string, stdout, stderr io.Writer) error {
	fs, logPath := tpmFlags("quote", stderr)
	dev := fs.String("tpm", measure.DefaultDevice, "TPM device, or an emulator's unix socket")
	nonceHex := fs.String("nonce", "", "the verifier's challenge, hex (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs, "give the nonce with --nonce HEX"); err != nil {
		return err
	}
	nonce, err := parseNonce("tpm quote", *nonceHex)
	if err != nil {
		return err
	}
	t, err := openTPMFlag(*dev)
	if err != nil {
		return err
	}
	defer t.Close()
	q, err := measure.TakeQuote(t, nonce, *logPath)
	if err != nil {
		return err
	}
	return writeJSON(stdout, q)
}

func runTPMVerify(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tpm verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nonceHex := fs.String("nonce", "", "the challenge sent to the node, hex (required)")
	image := fs.String("expect-image", "", "SHA-256 of the image's manifest.json the node must have booted")
	action := fs.String("expect-action", "", "action the boot must have taken (boot, install, upgrade, …)")
	steps := fs.String("expect-steps", "", "comma-separated steps the boot must have run, in order")
	akFile := fs.String("ak", "", "a previous quote of this node, whose attestation key this one must use")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("tpm verify", fmt.Sprintf("need one QUOTE.json, got %d", fs.NArg()), "nodeinit tpm verify QUOTE.json --nonce HEX --expect-image SHA256")
	}
	nonce, err := parseNonce("tpm verify", *nonceHex)
	if err != nil {
		return err
	}
	q, err := readQuote(fs.Arg(0))
	if err != nil {
		return err
	}
	want := measure.Expect{Nonce: nonce, Image: *image, Action: *action}
	if *steps != "" {
		want.Steps = strings.Split(*steps, ",")
	}
	if *akFile != "" {
		pinned, err := readQuote(*akFile)
		if err != nil {
			return err
		}
		want.AKPublic = pinned.AKPublic
	}
	v, err := measure.Verify(q, want)
	if err != nil {
		return operr.Wrap(err, "tpm verify "+fs.Arg(0)+": the quote cannot be trusted", "take a new quote with a fresh nonce; if it fails again, treat the node as compromised", "")
	}
	b := v.Boot
	fmt.Fprintf(stdout, "quote verified: signature, nonce and event log\naction:  %s\nimage:   %s (version %s)\nslot:    %s\nsteps:   %s\nphases:  %s\n",
		b.Action, orNone(b.Image), orNone(b.Version), orNone(b.Slot), strings.Join(b.Steps, ","), strings.Join(b.Phases, ","))
	if !v.OK() {
		return operr.New("tpm verify "+fs.Arg(0)+": the node did not boot as expected", strings.Join(v.Problems, "; "),
			"boot the node with the expected image and command line, or correct --expect-image / --expect-action / --expect-steps", "")
	}
	fmt.Fprintln(stdout, "the node booted as expected")
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func readQuote(path string) (*measure.Quote, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var q measure.Quote
	if err := json.Unmarshal(b, &q); err != nil {
		return nil, fmt.Errorf("%s is not a quote from `nodeinit tpm quote`: %w", path, err)
	}
	return &q, nil
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
