package release

import (
	"context"
	"errors"
	"mime"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/releng-project/releng/internal/artifacts"
	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/journal"
)

// releasesStage copies the version directory to the releases bucket (step 3).
type releasesStage struct{}

func (releasesStage) Name() string { return "releases" }
func (releasesStage) Skip(u *upload) string {
	if u.t.Releases == nil {
		return "no releases bucket configured"
	}
	return ""
}

func (releasesStage) Run(ctx context.Context, u *upload) (Published, error) {
	pub := Published{Where: u.t.Releases.String()}
	prefix := u.rec.VersionDir + "/"
	for _, f := range u.rec.Files {
		if !strings.HasPrefix(f.Path, prefix) {
			continue
		}
		key := strings.TrimPrefix(f.Path, "artifacts/")
		sent, err := u.putFile(ctx, u.t.Releases, key, filepath.Join(u.p.ReleaseDir(), f.Path), f)
		if err != nil {
			return pub, err
		}
		pub.Objects++
		if sent {
			pub.Sent++
			pub.Bytes += f.Size
		}
	}
	return pub, nil
}

// resumableThreshold is the size from which files go up in resumable parts.
const resumableThreshold = 64 << 20

// putFile publishes one file unless the object is already there with the
// same size and checksum; it journals the object, and the parts of a large
// upload so that an interrupted one resumes.
func (u *upload) putFile(ctx context.Context, b bucket.Bucket, key, file string, f artifacts.File) (bool, error) {
	url := bucket.ObjectURL(b, key)
	if info, err := b.Stat(ctx, key); err == nil && bucket.SameObject(info, f.Size, f.SHA256) {
		return false, u.j.Append(journal.Entry{Kind: "object", Key: url, Size: f.Size, SHA256: f.SHA256, Note: "already there"})
	} else if err != nil && !errors.Is(err, bucket.ErrNotFound) {
		return false, err
	}
	fh, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer fh.Close()
	popts := bucket.PutOptions{ContentType: contentType(key), SHA256: f.SHA256}
	if f.Size >= resumableThreshold {
		state, _ := u.j.Upload(url)
		if state.SHA256 != "" && state.SHA256 != f.SHA256 {
			state = bucket.UploadState{}
		}
		_, err = b.PutResumable(ctx, key, fh, f.Size, bucket.ResumableOptions{
			PutOptions: popts,
			State:      state,
			OnStart: func(s bucket.UploadState) error {
				state = s
				return u.j.Append(journal.Entry{Kind: "upload", Key: url, Upload: &s})
			},
			OnPart: func(part bucket.Part) error {
				state.Parts = append(state.Parts, part)
				s := state
				return u.j.Append(journal.Entry{Kind: "upload", Key: url, Upload: &s})
			},
		})
	} else {
		_, err = b.Put(ctx, key, fh, f.Size, popts)
	}
	if err != nil {
		return false, err
	}
	return true, u.j.Append(journal.Entry{Kind: "object", Key: url, Size: f.Size, SHA256: f.SHA256})
}

func contentType(key string) string {
	base := path.Base(key)
	switch {
	case strings.HasSuffix(base, ".tar.gz"), strings.HasSuffix(base, ".tgz"):
		return "application/gzip"
	case strings.HasSuffix(base, ".nix"), strings.HasSuffix(base, ".sha256"), base == "SHA256SUMS":
		return "text/plain; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(base)); t != "" {
		return t
	}
	return "application/octet-stream"
}
