package main

import (
	"net/url"
	"testing"
)

func TestKind(t *testing.T) {
	for _, tt := range []struct{ method, target, want string }{
		{"PUT", "/b/k/x.html", "PUT"},
		{"PUT", "/b/k?partNumber=1&uploadId=u", "PUT"},
		{"POST", "/b/k?uploads", "POST"},
		{"HEAD", "/b/k", "HEAD"},
		{"GET", "/b/k", "GET"},
		{"GET", "/b/k?uploadId=u", "LIST"},
		{"GET", "/b?list-type=2&prefix=manual%2F", "LIST"},
		{"GET", "/b/?delimiter=%2F&prefix=", "LIST"},
		{"GET", "/b?uploads&prefix=k", "LIST"},
		{"GET", "/b", "LIST"},
		{"GET", "/b?location", "GET"},
		{"DELETE", "/b/k", "DELETE"},
	} {
		u, err := url.Parse(tt.target)
		if err != nil {
			t.Fatal(err)
		}
		if got := Kind(tt.method, u.Path, u.Query()); got != tt.want {
			t.Errorf("Kind(%s %s) = %s, want %s", tt.method, tt.target, got, tt.want)
		}
	}
}
