// Command imgbuild writes a container image without a registry or a daemon:
// an otherwise empty linux/amd64 image holding the given static binaries,
// as a docker-archive tarball that `ctr images import` reads. make test-k8s
// uses it for the icefill worker image and the pause image of the test
// cluster's pod sandboxes.
//
//	imgbuild -tag icefill.local/icefill:abc -o icefill.tar -entrypoint /icefill ./icefill=/icefill
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	tag := flag.String("tag", "", "image reference, e.g. icefill.local/icefill:test")
	out := flag.String("o", "", "output tarball")
	entry := flag.String("entrypoint", "", "path of the entrypoint inside the image")
	flag.Parse()
	if *tag == "" || *out == "" || *entry == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: imgbuild -tag REF -o FILE.tar -entrypoint /PATH SRC=/DST...")
		os.Exit(2)
	}
	if err := build(*tag, *out, *entry, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "imgbuild:", err)
		os.Exit(1)
	}
}

func build(tag, out, entry string, files []string) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	layerTar, err := layer(files)
	if err != nil {
		return err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil })
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Entrypoint = []string{entry}
	cf.Config.Env = []string{"PATH=/"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	return tarball.WriteToFile(out, ref, img)
}

// layer is a tar of each SRC=/DST file (mode 0755, owned by root) and a
// world-writable /tmp.
func layer(files []string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	addDir := func(d string, mode int64) error {
		if d == "/" || d == "." || dirs[d] {
			return nil
		}
		dirs[d] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: mode})
	}
	if err := addDir("/tmp", 0o1777); err != nil {
		return nil, err
	}
	for _, f := range files {
		src, dst, ok := strings.Cut(f, "=")
		if !ok || !path.IsAbs(dst) {
			return nil, fmt.Errorf("%q: want SRC=/DST", f)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		if err := addDir(path.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(dst, "/"), Mode: 0o755, Size: int64(len(data))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
