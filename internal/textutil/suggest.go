// Package textutil holds small text helpers shared by the packages that
// report bad input: the edit distance behind "did you mean …?" hints, and
// CheckText, which keeps control, invisible and invalid characters out of
// the strings that reach git, URLs and file names.
package textutil

// maxLen bounds the strings EditDistance compares (hostile input stays cheap).
const maxLen = 64

// EditDistance is the Levenshtein distance between a and b (bytes); strings
// longer than 64 bytes are simply "far" (64).
func EditDistance(a, b string) int {
	if len(a) > maxLen || len(b) > maxLen {
		return maxLen
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Closest returns the candidate nearest to s and its distance ("" and
// maxLen for no candidates); ties go to the earlier candidate.
func Closest(s string, candidates []string) (string, int) {
	best, bestD := "", maxLen
	for _, c := range candidates {
		if d := EditDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best, bestD
}
