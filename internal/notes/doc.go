// Package notes is releng's release-notes engine (SPEC §4): it parses the
// release-note fragments (YAML front matter read as PyYAML's safe loader
// reads it, then a Markdown body), reads the change-authors file, checks
// fragments for every problem at once (`releng notes check`), renders them
// byte for byte as each generation of Lix's renderer did (`releng notes
// render`), writes new fragments (`releng notes new`) and prepares a
// release's notes file and commit (`releng prepare`).
//
// Lix's renderer is Python, so the text handling follows Python's rules
// where they differ from Go's: str.strip() strips Unicode whitespace,
// textwrap.indent cuts lines as str.splitlines() does, and YAML scalars are
// typed by PyYAML's YAML 1.1 resolver (`yes` is a boolean, `010` is 8,
// `2025-01-01` is a date, `1:30` is 90).
//
// The package is silent: problems and warnings are returned as values and
// the CLI prints them.
package notes
