package gitflow

import (
	"context"
	"testing"
)

func TestIsMaintenance(t *testing.T) {
	tests := []struct {
		name      string
		main      []string // tags reachable from REMOTE/main_branch
		head      []string // tags reachable from HEAD
		releasing string
		want      bool
	}{
		{"first release ever", nil, nil, "2.90.0", false},
		{"new major on main", []string{"2.90.0", "2.90.1"}, []string{"2.90.0", "2.90.1"}, "2.91.0", false},
		{"new major on main, already tagged", []string{"2.90.0"}, []string{"2.90.0", "2.91.0"}, "2.91.0", false},
		{"point release on main", []string{"2.91.0"}, []string{"2.91.0"}, "2.91.1", false},
		{"point release on a maintenance branch", []string{"2.90.0", "2.91.0"}, []string{"2.90.0", "2.90.1", "2.90.2"}, "2.90.3", true},
		{"maintenance branch, already tagged", []string{"2.90.0", "2.91.0"}, []string{"2.90.0", "2.90.3"}, "2.90.3", true},
		{"maintenance branch before main's next major", []string{"2.90.0"}, []string{"2.90.0", "2.90.2"}, "2.90.3", false},
		{"beta on main after the previous major", []string{"2.89.0"}, []string{"2.89.0"}, "2.90.0-beta.1", false},
		{"final release after its beta", []string{"2.90.0-beta.1"}, []string{"2.90.0-beta.1"}, "2.90.0", false},
		{"beta is older than the release on main", []string{"2.90.0"}, []string{"2.90.0-beta.1"}, "2.90.0-beta.2", true},
		{"rc older than final", []string{"2.90.0"}, []string{"2.90.0rc1"}, "2.90.0rc2", true},
		{"dev is older than the release", []string{"2.96.0"}, nil, "2.96.0-dev", true},
		// String order would say "2.9.x" > "2.10.0"; PEP 440 says otherwise.
		{"2.10.0 on main is newer than 2.9.x", []string{"2.9.0", "2.10.0"}, []string{"2.9.0", "2.9.1"}, "2.9.2", true},
		{"2.10.1 on main after 2.9.5", []string{"2.9.5", "2.10.0"}, []string{"2.9.5", "2.10.0"}, "2.10.1", false},
		{"2.9.2 on main after 2.10.0 on a side branch", []string{"2.9.1"}, []string{"2.10.0"}, "2.10.1", false},
		{"1.10 vs 1.9 in the major", []string{"1.10.0"}, []string{"1.9.4"}, "1.9.5", true},
		{"non-version tags are ignored", []string{"nightly", "2.90.0", "zzz"}, []string{"2.90.0", "nightly"}, "2.90.1", false},
		{"only non-version tags on main", []string{"nightly"}, []string{"2.90.0"}, "2.90.1", false},
		{"equal after normalisation", []string{"2.90.0b1"}, []string{"2.90.0-beta.1"}, "2.90.0-beta.1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsMaintenance(tc.main, tc.head, tc.releasing); got != tc.want {
				t.Errorf("IsMaintenance(%v, %v, %q) = %v, want %v", tc.main, tc.head, tc.releasing, got, tc.want)
			}
		})
	}
}

func TestNewest(t *testing.T) {
	tests := []struct {
		tags []string
		want string
	}{
		{nil, ""},
		{[]string{"2.9.0", "2.10.0", "2.9.9"}, "2.10.0"},
		{[]string{"2.90.0", "2.90.0-beta.1", "2.90.0rc1"}, "2.90.0"},
		{[]string{"2.90.0.post1", "2.90.0"}, "2.90.0.post1"},
		{[]string{"latest", "nightly"}, ""},
	}
	for _, tc := range tests {
		if got := Newest(tc.tags); got != tc.want {
			t.Errorf("Newest(%v) = %q, want %q", tc.tags, got, tc.want)
		}
	}
}

// The §6.3 scenario with real git: 2.90.0 and 2.91.0 released on main,
// release-2.90 branched off after 2.90.0; 2.90.3 there is maintenance.
func TestDetectMaintenanceGit(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t, "2.90.0")
	tagRelease(t, r)
	r.Git("branch", "release-2.90")
	setVersion(t, r, "2.91.0")
	tagRelease(t, r)
	r.Git("push", "-q", "origin", "main")
	r.Git("fetch", "-q", "origin")

	r.Git("checkout", "-q", "release-2.90")
	setVersion(t, r, "2.90.3")
	m, err := DetectMaintenance(ctx, open(t, r))
	if err != nil {
		t.Fatal(err)
	}
	if !m.Maintenance || m.NewestOnMain != "2.91.0" || m.NewestOnHead != "2.90.0" || m.MainRef != "refs/remotes/origin/main" {
		t.Errorf("on release-2.90: %+v, want maintenance (main has 2.91.0)", m)
	}

	r.Git("checkout", "-q", "main")
	setVersion(t, r, "2.91.1")
	if m, err := DetectMaintenance(ctx, open(t, r)); err != nil || m.Maintenance {
		t.Errorf("on main: %+v, %v; want not maintenance", m, err)
	}

	// Without the remote-tracking branch it is not a maintenance release.
	r.Git("checkout", "-q", "release-2.90")
	r.Git("update-ref", "-d", "refs/remotes/origin/main")
	if m, err := DetectMaintenance(ctx, open(t, r)); err != nil || m.Maintenance || m.MainRef != "" {
		t.Errorf("without origin/main: %+v, %v; want not maintenance", m, err)
	}
}
