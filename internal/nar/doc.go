// Package nar reads and writes Nix archives (NAR), the serialisation Nix
// uses for the contents of a store path.
//
// [DumpPath] writes the NAR of a filesystem path byte for byte as
// `nix-store --dump` does, streaming file contents with bounded buffers, and
// can compute the NAR's sha256 and size and the binary cache's `.ls`
// listing ([Listing]) in the same pass. It refuses what current Nix and Lix
// clients cannot unpack (see [ValidateName], [ValidateTarget], [MaxDepth]).
//
// [NewReader] iterates over the entries of a NAR read from an untrusted
// source: every length is bounded before anything is allocated, padding
// must be zero, directory entries must be strictly increasing and names
// must be safe to create in a directory. [ReadListing] builds the listing
// of a NAR with it.
//
// The format: every token is a little-endian u64 length, the bytes, and
// zero padding to a multiple of 8. A NAR is "nix-archive-1" followed by a
// node: "(" "type" ("regular" ["executable" ""] "contents" DATA |
// "symlink" "target" T | "directory" {"entry" "(" "name" N "node" NODE ")"})
// ")".
package nar
