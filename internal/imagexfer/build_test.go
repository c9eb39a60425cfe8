package imagexfer

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func composeProjectDir(t *testing.T, workerImage string) string {
	t.Helper()
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+baseImage+"\nRUN echo hi >/hi\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "compose.yml"), []byte(`services:
  web:
    build: .
  worker:
    build:
      context: .
    image: `+workerImage+`
  cache:
    image: `+baseImage+`
`), 0o644))
	return dir
}

func checkBuilt(t *testing.T, got map[string]string, want map[string]string) {
	t.Helper()
	for _, img := range got {
		img := img
		t.Cleanup(func() { _ = exec.Command("docker", "rmi", img).Run() })
	}
	if len(got) != len(want) {
		t.Fatalf("BuildServices = %v, want %v", got, want)
	}
	for svc, img := range want {
		if got[svc] != img {
			t.Fatalf("BuildServices = %v, want %v", got, want)
		}
		if _, err := LocalImageID(context.Background(), img); err != nil {
			t.Fatalf("image %s for %s: %v", img, svc, err)
		}
	}
}

func TestBuildServicesComposeV2(t *testing.T) {
	ensureBase(t)
	if exec.Command("docker", "compose", "version").Run() != nil {
		t.Skip("docker compose v2 not available")
	}
	r := randHex()
	worker := "shipit-build-test-worker:" + r
	dir := composeProjectDir(t, worker)
	got, err := BuildServices(context.Background(), dir, "compose.yml", "Shipit.Test"+r)
	if err != nil {
		t.Fatal(err)
	}
	checkBuilt(t, got, map[string]string{"web": "shipittest" + r + "-web", "worker": worker})
}

func TestBuildServicesComposeV1(t *testing.T) {
	docker := realDocker(t)
	ensureBase(t)
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("docker-compose v1 not installed")
	}
	// Hide the v2 plugin so BuildServices falls back to docker-compose.
	setLocalDocker(t, shim(t, "docker", "[ \"$1\" = compose ] && exit 1\nexec "+docker+" \"$@\"\n"))
	r := randHex()
	worker := "shipit-build-test-worker:" + r
	dir := composeProjectDir(t, worker)
	got, err := BuildServices(context.Background(), dir, "compose.yml", "Shipit.Test"+r)
	if err != nil {
		t.Fatal(err)
	}
	checkBuilt(t, got, map[string]string{"web": "shipittest" + r + "_web", "worker": worker})
}

func TestTagForRelease(t *testing.T) {
	ensureBase(t)
	dst := "shipit-tag-test:" + randHex()
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", dst).Run() })
	if err := TagForRelease(context.Background(), baseImage, dst); err != nil {
		t.Fatal(err)
	}
	a, _ := LocalImageID(context.Background(), baseImage)
	b, err := LocalImageID(context.Background(), dst)
	if err != nil || a != b {
		t.Fatalf("%s = %s, %v; want %s", dst, b, err, a)
	}
}
