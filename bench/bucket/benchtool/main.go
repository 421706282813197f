// Command benchtool is the Go side of bench/bucket/run.sh, the benchmark of
// `releng upload` (releases and docs buckets) against `aws s3 sync`:
//
//	benchtool mkrelease DIR          a synthetic project in DIR: git repo,
//	                                 version.json, release/ (1 GB version
//	                                 directory, 500-file manual) and the
//	                                 release/build.json `releng build` writes
//	benchtool proxy LISTEN TARGET [DELAY]
//	                                 a loopback reverse proxy to MinIO that
//	                                 counts requests by kind and the bytes of
//	                                 their bodies; GET /.bench/stats returns
//	                                 the counts as JSON and resets them; with
//	                                 DELAY (a Go duration), each request waits
//	                                 that long first, as if the store were
//	                                 one round trip away
//	benchtool reset ENDPOINT BUCKET… empties (force-deletes) and recreates buckets
//	benchtool compare ENDPOINT A B   exits 1 unless buckets A and B hold the
//	                                 same keys with the same sizes
//
// The S3 commands take the credentials from AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY and talk to ENDPOINT (host:port) directly, not
// through the proxy. It drives nothing of releng but its artifacts record,
// so that the benchmark keeps working while the upload internals change.
package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	args := os.Args[2:]
	var err error
	switch os.Args[1] {
	case "mkrelease":
		need(args, 1)
		err = mkrelease(args[0])
	case "proxy":
		if len(args) != 2 && len(args) != 3 {
			usage()
		}
		var delay time.Duration
		if len(args) == 3 {
			if delay, err = time.ParseDuration(args[2]); err != nil {
				usage()
			}
		}
		err = proxy(args[0], args[1], delay)
	case "reset":
		if len(args) < 2 {
			usage()
		}
		err = reset(args[0], args[1:])
	case "compare":
		need(args, 3)
		err = compare(args[0], args[1], args[2])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

func need(args []string, n int) {
	if len(args) != n {
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchtool mkrelease DIR | proxy LISTEN TARGET [DELAY] | reset ENDPOINT BUCKET... | compare ENDPOINT A B")
	os.Exit(2)
}
