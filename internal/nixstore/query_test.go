package nixstore

import "testing"

func TestNixGetenv(t *testing.T) {
	t.Setenv("RELENG_TEST_VAR", "process")
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, "process"},
		{[]string{"RELENG_TEST_VAR=env"}, "env"},
		{[]string{"RELENG_TEST_VAR=first", "RELENG_TEST_VAR_X=other", "RELENG_TEST_VAR=last"}, "last"},
		{[]string{"RELENG_TEST_VAR="}, ""},
	} {
		if got := (Nix{Env: tc.env}).Getenv("RELENG_TEST_VAR"); got != tc.want {
			t.Errorf("Getenv with %q = %q, want %q", tc.env, got, tc.want)
		}
	}
}
