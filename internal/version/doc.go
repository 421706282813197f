// Package version parses and orders the two kinds of version releng meets
// (SPEC §5).
//
// Release versions are PEP 440 versions, handled exactly as Python's
// packaging.version.Version does (Lix's release scripts use it): Parse
// accepts every spelling packaging accepts ("2.90.0-beta.1", "v1.0",
// "1!2.0.post1", "2.96.0-dev", "1.0+local.7") into what packaging's
// normalised form says (the tests check it), Compare gives its order, and
// PEP440.IsPrerelease its is_prerelease. Major derives MAJOR (SPEC §1).
//
// Store path names ("name-version") split and compare as Nix does:
// ParseDrvName is builtins.parseDrvName and CompareNix is
// builtins.compareVersions.
//
// The package is pure Go and has no dependencies outside the standard
// library. Its tests compare it against the real tools (python3 with
// packaging, nix-instantiate) when they are installed.
package version
