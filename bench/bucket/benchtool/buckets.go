package main

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func client(endpoint string) (*minio.Client, error) {
	return minio.New(endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
		Region: "us-east-1",
	})
}

// reset leaves each bucket existing and empty.
func reset(endpoint string, buckets []string) error {
	ctx := context.Background()
	c, err := client(endpoint)
	if err != nil {
		return err
	}
	for _, b := range buckets {
		ok, err := c.BucketExists(ctx, b)
		if err != nil {
			return err
		}
		if ok {
			if err := c.RemoveBucketWithOptions(ctx, b, minio.RemoveBucketOptions{ForceDelete: true}); err != nil {
				return fmt.Errorf("remove %s: %w", b, err)
			}
		}
		if err := c.MakeBucket(ctx, b, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
			return fmt.Errorf("make %s: %w", b, err)
		}
	}
	return nil
}

func objects(ctx context.Context, c *minio.Client, bucket string) (map[string]int64, error) {
	out := map[string]int64{}
	for oi := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if oi.Err != nil {
			return nil, oi.Err
		}
		out[oi.Key] = oi.Size
	}
	return out, nil
}

// compare prints "N OBJECTS BYTES" when buckets a and b hold the same keys
// with the same sizes, and the differences (and an error) otherwise.
func compare(endpoint, a, b string) error {
	ctx := context.Background()
	c, err := client(endpoint)
	if err != nil {
		return err
	}
	oa, err := objects(ctx, c, a)
	if err != nil {
		return err
	}
	ob, err := objects(ctx, c, b)
	if err != nil {
		return err
	}
	var diff []string
	var bytes int64
	for k, sa := range oa {
		bytes += sa
		if sb, ok := ob[k]; !ok {
			diff = append(diff, fmt.Sprintf("only in %s: %s", a, k))
		} else if sa != sb {
			diff = append(diff, fmt.Sprintf("%s: %d bytes in %s, %d in %s", k, sa, a, sb, b))
		}
	}
	for k := range ob {
		if _, ok := oa[k]; !ok {
			diff = append(diff, fmt.Sprintf("only in %s: %s", b, k))
		}
	}
	if len(diff) > 0 {
		sort.Strings(diff)
		for _, d := range diff {
			fmt.Fprintln(os.Stderr, d)
		}
		return fmt.Errorf("%s and %s differ in %d objects", a, b, len(diff))
	}
	fmt.Printf("%d %d\n", len(oa), bytes)
	return nil
}
