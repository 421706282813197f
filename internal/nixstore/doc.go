// Package nixstore is releng's view of a Nix store and of the binary cache
// metadata derived from it: store paths (with a configurable store
// directory), NAR hashes in Nix's notations, path information as printed
// by `nix path-info --json` (every shape Nix and Lix have used), narinfo
// files, and the ed25519 keys and signatures of binary caches.
//
// It does not talk to the Nix daemon or read the Nix database: path
// information comes from `nix path-info` ([Query]) or from a JSON file
// ([LoadClosureFile]).
package nixstore
