package journal

// Summary is what Summarize records for one release: the steps done, the
// number of objects published and each step's progress (the tests' view).
func Summary(path, release string) (steps []string, objects int, progress []StepProgress, err error) {
	rels, err := Summarize(path)
	if err != nil {
		return nil, 0, nil, err
	}
	for _, r := range rels {
		if r.ID == release {
			return r.Steps, r.Objects, r.Progress, nil
		}
	}
	return nil, 0, nil, nil
}
