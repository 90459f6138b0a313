// Package measure records what nodeinit does at boot in the TPM 2.0 and in the
// event log that systemd keeps, replays that log, and quotes and verifies it.
//
// # What goes where
//
// Boot phases go into PCR 11 exactly as systemd-pcrphase writes them: the
// UTF-8 word without a trailing NUL ("enter-initrd" when the engine starts,
// "leave-initrd" right before switch_root), extended into every PCR bank the
// TPM has, and logged as a systemd record of eventType "phase". The node's own
// systemd then continues the same sequence ("sysinit", "ready").
//
// nodeinit's own measurements go into PCR 23 (PCRNodeinit): the action, the
// SHA-256 of the plan's JSON, the image's manifest digest and version, the slot
// booted, every step's name before the step runs, and on a failure the failing
// stage. Each measured value is a short string such as
// "nodeinit:image:sha256:<hex>:version:1.2"; its digest is the hash of exactly
// that string, and the log record carries the string, so a record says in words
// what was measured and anyone can recompute its digest.
//
// # Why PCR 23
//
// The UAPI Group's Linux TPM PCR Registry gives every PCR below 16 to the
// firmware (0–7), the boot loaders (8 and 9: GRUB's commands and files, which
// our PXE menus use; 4, 5 and 12: systemd-boot), the kernel (9: the initrd;
// 10: IMA), shim (14) or systemd (11: UKI sections and phases; 12: command line
// and credentials; 13: sysexts; 15: machine-id, file systems, volume keys).
// 16 is for debugging and 17–22 belong to D-RTM. PCR 23, "application
// support", is the one register the registry leaves to applications, so it is
// the only choice that neither disturbs the predictions of systemd-pcrlock nor
// mixes with a firmware or boot loader's record.
//
// The price is that PCR 23 can be reset with TPM2_PCR_Reset at locality 0: a
// process that is root on the running node can rewrite it. Its boot record is
// therefore evidence of what the initramfs did only as far as the node was
// not taken over after boot; PCR 11, which cannot be reset, still shows that
// the initramfs ran and left. A verifier quotes both (QuotedPCRs), and Verify
// refuses a log whose PCR 23 records do not lie between enter-initrd and
// leave-initrd. Where that is not enough, the next step is an NvPCR (an NV index
// of type TPM_NT_EXTEND whose first write is bound to PCR 11), as systemd does.
//
// # The event log
//
// Records are appended to systemd's userspace log, /run/log/systemd/tpm2-measure.log,
// which /init moves into the node with /run, so the node's systemd-pcrlock and
// `systemd-analyze pcrs` read nodeinit's entries beside systemd's own. The file
// is JSON-SEQ (RFC 7464: each record is 0x1E, one JSON object, "\n") of records
// in the TCG Canonical Event Log's JSON form (CEL-JSON) laid out as systemd
// writes them:
//
//	{"pcr":11,"digests":[{"hashAlg":"sha256","digest":"…"}],"content_type":"systemd",
//	 "content":{"string":"enter-initrd","bootId":"…","timestamp":123,"eventType":"phase"}}
//
// Like systemd, the writer holds an exclusive flock on the file and sets its
// sticky bit between the extend and the record, so a reader can tell a log
// that an interrupted writer left one record short.
//
// # No TPM
//
// A machine without a TPM is normal: a Measurer with no TPM measures nothing
// and says so once. A TPM that fails during the boot stops the measuring; the
// boot goes on unless nodeinit.tpm=required, where the failure stops it.
package measure
