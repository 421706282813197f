package fsutil

// The size caps of every input releng reads (SPEC §12, issue: every read is
// bounded). One table, so the caps are found and reviewed in one place.
const (
	MaxConfig       = 1 << 20   // releng.toml
	MaxVersionFile  = 64 << 10  // version.json
	MaxFragment     = 1 << 20   // one release-note fragment
	MaxAuthors      = 4 << 20   // the authors file
	MaxNotesFile    = 16 << 20  // the notes output and SUMMARY.md (read to be rewritten)
	MaxRecord       = 256 << 20 // release/build.json (one entry per file of the manual and artifacts)
	MaxJournal      = 256 << 20 // release/state/ENV.journal
	MaxSmallState   = 64 << 10  // lock files, prev-branch, key files
	MaxCredentials  = 64 << 10  // credentials_command output
	MaxNarinfo      = 1 << 20   // a narinfo
	MaxListing      = 256 << 20 // a .ls NAR listing (uncompressed)
	MaxManifestJSON = 4 << 20   // an OCI manifest, index or image config
	MaxManifestNix  = 1 << 20   // a manifest.nix
	MaxPathInfo     = 1 << 30   // nix path-info JSON of a closure
	MaxChecksums    = 16 << 20  // SHA256SUMS (read to be signed or checked)
	MaxSignature    = 64 << 10  // SHA256SUMS.sig
)
