package release

import "context"

// imagesStage pushes the natively built images to the environment's image
// targets (SPEC §10.2 step 2).
type imagesStage struct{}

func (imagesStage) Name() string { return "images" }
func (imagesStage) Skip(u *upload) string {
	return "container images are not built by this version of releng yet"
}
func (imagesStage) Run(ctx context.Context, u *upload) (Published, error) {
	return Published{}, nil
}
