// Package binarycache writes Nix binary caches that stock Nix and Lix read:
// the native replacement for `nix copy --to file://…` and `nix copy --to
// s3://…` (SPEC §9).
//
// ParseStoreURI reads a store URI exactly as Nix spells it, with every
// parameter of SPEC §9 (an unknown parameter is an error, not a warning);
// StoreURI.Open returns the bucket behind it (a directory for file://, an S3
// bucket through package bucket for s3://).
//
// Push publishes the closure of some store paths (SPEC §9.1): one existence
// check per path, concurrently; the NARs of the missing paths serialised,
// hashed, compressed and uploaded in one streaming pass each, in parallel and
// largest first; a narinfo written only once its NAR, its listing and the
// narinfos of all its references exist, so that a reader never sees a
// narinfo whose NAR or closure is missing, even if the push is killed.
// The NAR hash and size are checked against the Nix database before the
// upload of the NAR completes: a corrupt store path is never published.
//
// zstd NARs are written as independent frames of FrameSize bytes of input,
// compressed by a pool of workers shared by all NARs in flight, so that one
// large NAR uses every core while the bytes do not depend on the number of
// cores. Memory is bounded by the frame budget and the number of uploads in
// flight, not by the size of the NARs or of the closure.
//
// The package is silent: what happens is reported through PushOptions.OnEvent
// (see NewProgress for the CLI's rendering).
package binarycache
