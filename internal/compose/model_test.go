package compose

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	p, err := Parse([]byte(`name: shop
services:
  worker:
    build: ./worker
    image: shop-worker
  web:
    build:
      context: app
      dockerfile: Dockerfile.prod
    ports: ["127.0.0.1:18080:3000/tcp"]
    container_name: shop
  db:
    image: postgres
    expose: ["5432"]
    network_mode: host
  bare:
`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "shop" || !reflect.DeepEqual(p.Written, []string{"worker", "web", "db", "bare"}) ||
		!reflect.DeepEqual(p.Order, []string{"bare", "db", "web", "worker"}) {
		t.Fatalf("project = %+v", p)
	}
	web, db, worker := p.Services["web"], p.Services["db"], p.Services["worker"]
	if dir, df := web.BuildContext(); dir != "app" || df != "Dockerfile.prod" || !web.Builds() || !web.Publishes() ||
		web.ContainerName != "shop" || web.ContainerPort() != 3000 {
		t.Errorf("web = %+v", web)
	}
	if dir, df := worker.BuildContext(); dir != "./worker" || df != "Dockerfile" || worker.Image != "shop-worker" {
		t.Errorf("worker = %+v", worker)
	}
	if db.Builds() || db.ContainerPort() != 5432 || db.NetworkMode != "host" || db.Publishes() {
		t.Errorf("db = %+v", db)
	}
	// `compose config --format json` output is read the same way.
	j, err := Parse([]byte(`{"name":"x","services":{"web":{"build":{"context":"/src"},"ports":[{"target":8080,"published":"80"}]}}}`))
	if err != nil || j.Services["web"].ContainerPort() != 8080 || !j.Services["web"].Builds() {
		t.Errorf("json: %+v %v", j, err)
	}
	if _, err := Parse([]byte("services: [\n")); err == nil {
		t.Error("bad YAML parsed")
	}
}

func TestFindFile(t *testing.T) {
	dir := t.TempDir()
	if got := FindFile(dir); got != "docker-compose.yml" {
		t.Errorf("empty dir: %s", got)
	}
	os.WriteFile(filepath.Join(dir, "compose.yaml"), nil, 0o644)
	if got := FindFile(dir); got != "compose.yaml" {
		t.Errorf("got %s", got)
	}
	os.WriteFile(filepath.Join(dir, "docker-compose.yaml"), nil, 0o644)
	if got := FindFile(dir); got != "docker-compose.yaml" {
		t.Errorf("got %s", got)
	}
}
